"""The npz dataset format, stated once: the reader uses it, and ``--help`` prints it without importing torch."""

#: Shares of x_train held out when the archive has no val / test split (carved with the fixed split seed).
NPZ_VAL_FRACTION = 0.10
NPZ_TEST_FRACTION = 0.15
#: The format, as `gennas run --help` and `gennas train --help` state it.
NPZ_FORMAT = f"""\
npz:PATH is a numpy .npz archive (np.savez) with these arrays:
  x_train, y_train   required
  x_val, y_val       optional pair; if absent a fixed stratified {NPZ_VAL_FRACTION:.0%} of x_train is held out
  x_test, y_test     optional pair; if absent a fixed stratified {NPZ_TEST_FRACTION:.0%} of x_train is held out
                     (gennas run says which splits it carved)
  x_*   images, N×H×W (grey), N×C×H×W or N×H×W×C with C in 1..4, square (H == W), all
        splits the same shape; dtype uint8 in 0..255, or float in [0, 1]
  y_*   labels, 1-D integer array, one per image, classes 0..K-1 (K = largest label + 1)
Example: np.savez("data.npz", x_train=x.astype(np.uint8), y_train=y.astype(np.int64))"""
