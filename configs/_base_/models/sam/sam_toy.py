# The toy SAM shipped in the package (a test and demo model trained on
# generated scenes by tools/train_toy_sam.py; not for real photos).
sam = dict(type='SAM', arch='toy', checkpoint='mmsamrefiner://toy_sam.pth')
