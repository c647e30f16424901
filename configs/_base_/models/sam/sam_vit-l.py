# SAM ViT-L with the official checkpoint (1.2 GB) by URL, downloaded once into
# torch hub's cache (`checkpoint` also takes a local path).
sam = dict(
    type='SAM',
    arch='vit_l',
    checkpoint='https://dl.fbaipublicfiles.com/segment_anything/'
    'sam_vit_l_0b3195.pth')
