# SAM ViT-H with the official checkpoint (2.4 GB) by URL, downloaded once into
# torch hub's cache (`checkpoint` also takes a local path).
sam = dict(
    type='SAM',
    arch='vit_h',
    checkpoint='https://dl.fbaipublicfiles.com/segment_anything/'
    'sam_vit_h_4b8939.pth')
