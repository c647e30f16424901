# The light HQ-SAM (TinyViT encoder, fixed 1024 input) with the authors'
# checkpoint (the 'hq' extra: pip install -e '.[hq]').
sam = dict(
    type='SAM',
    family='hq',
    arch='vit_tiny',
    checkpoint='https://huggingface.co/lkeab/hq-sam/resolve/main/sam_hq_vit_tiny.pth')
