# SAMRefiner with the reference's defaults (authors' `sam_refiner`).
# Official checkpoints: sam_vit_b_01ec64.pth, sam_vit_l_0b3195.pth,
# sam_vit_h_4b8939.pth (see README); a local path or a URL both work.
refiner = dict(
    type='SAMRefiner',
    sam=dict(type='SAM', arch='vit_h', checkpoint=None),
    iters=5,
    use_point=True,
    use_box=True,
    use_mask=True,
    add_neg=True,
    margin=0.0,  # elastic box off; the paper's experiments use 0.1
    box_geometry='authors',  # elastic box steps/strips as the authors' code; or 'symmetric'
    gamma=4.0,
    strength=30.0,
    max_batch=64)
