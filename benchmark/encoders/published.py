"""Figures published in Radford, Metz & Chintala (2015), Tables 1 and 2: the one place they are typed
(the leaderboards set rows against them; `bench pretrained list` quotes them for the released weights).

``family`` is the encoder name our rows are compared with (the part of the spec before ':').
Accuracies are in percent; SVHN's published figure is an error rate, stored as 100 - error.
"""

SOURCE = "Radford et al. 2015, arXiv:1511.06434"

ROWS = (
    # dataset, protocol, method, family, accuracy, std
    ("cifar10", "full", "1-layer k-means (Coates & Ng)", "kmeans", 80.6, None),
    ("cifar10", "full", "Exemplar-CNN (Dosovitskiy et al.)", "exemplar-cnn", 84.3, None),
    ("cifar10", "full", "DCGAN (ImageNet-1k, 28,672 features) + L2-SVM", "dcgan-imagenet", 82.8, None),
    ("cifar10", "few", "1-layer k-means (Coates & Ng)", "kmeans", 63.7, 0.7),
    ("cifar10", "few", "Exemplar-CNN (Dosovitskiy et al.)", "exemplar-cnn", 77.4, 0.2),
    ("cifar10", "few", "DCGAN (ImageNet-1k, 28,672 features) + L2-SVM", "dcgan-imagenet", 73.8, 0.4),
    ("svhn", "svhn-1000", "DCGAN (SVHN) + L2-SVM", "dcgan-svhn", 100 - 22.48, None),
)


PROTOCOL_WORDS = {"full": "all labels", "few": "400 per class", "svhn-1000": "1,000 labels"}


def quote(family: str) -> str:
    """The paper's figures for an encoder family, in one line, e.g. for `bench pretrained list`."""
    parts = []
    for dataset, protocol, _, fam, acc, std in ROWS:
        if fam != family:
            continue
        figure = f"{100 - acc:.2f}% test error" if dataset == "svhn" else f"{acc:.1f}%" + (f" ± {std}" if std else "")
        parts.append(f"{dataset} {PROTOCOL_WORDS[protocol]}: {figure}")
    return "; ".join(parts) + f" ({SOURCE})" if parts else ""
