# HQ-SAM ViT-H with the authors' checkpoint (the 'hq' extra:
# pip install -e '.[hq]').
sam = dict(
    type='SAM',
    family='hq',
    arch='vit_h',
    checkpoint='https://huggingface.co/lkeab/hq-sam/resolve/main/sam_hq_vit_h.pth')
