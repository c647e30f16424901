# SAM ViT-B with the official checkpoint (358 MB) by URL, downloaded once into
# torch hub's cache (`checkpoint` also takes a local path).
sam = dict(
    type='SAM',
    arch='vit_b',
    checkpoint='https://dl.fbaipublicfiles.com/segment_anything/'
    'sam_vit_b_01ec64.pth')
