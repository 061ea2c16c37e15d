"""Classification metrics on tiny hand-counted examples."""

import numpy as np

from musicgpt.evaluation.metrics import accuracy, confusion, expected_calibration_error, macro_f1


def test_metrics():
    y, p = [0, 0, 1, 2], [0, 1, 1, 2]
    assert accuracy(y, p) == 0.75
    assert confusion(y, p, 3).tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]
    assert np.isclose(macro_f1(y, p, 3), np.mean([2 / 3, 2 / 3, 1.0]))
    sure = np.eye(3)[[0, 1, 2, 0]]
    assert expected_calibration_error(sure, [0, 1, 2, 0]) == 0.0
    over = np.tile([0.9, 0.1], (4, 1))
    assert np.isclose(expected_calibration_error(over, [0, 0, 1, 1]), 0.4)
