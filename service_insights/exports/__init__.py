"""Files that leave the product: one chart's image and data files, each stamped, and the
report pack; images come from one persistent Chromium per process."""
