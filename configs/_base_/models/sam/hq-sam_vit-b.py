# HQ-SAM ViT-B with the authors' checkpoint (the 'hq' extra:
# pip install -e '.[hq]').
sam = dict(
    type='SAM',
    family='hq',
    arch='vit_b',
    checkpoint='https://huggingface.co/lkeab/hq-sam/resolve/main/sam_hq_vit_b.pth')
