"""TensorFlow's chatter is dropped from file descriptor 2; every other line passes, in order."""

from __future__ import annotations

import os

from keras_autoopt._quiet import quiet_stderr

NOISE = [
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
    b"I0000 00:00:1796073582.237438    4592 cudart_stub.cc:31] Could not find cuda drivers\n",
    b"W0000 00:00:1796071037.583370    6962 tf_tfl_flatbuffer_helpers.cc:367] Ignored drop\n",
    b"E0000 00:00:1796071104.695316    8707 cuda_platform.cc:52] failed call to cuInit\n",
    b"To enable the following instructions: AVX2 FMA, in other operations, rebuild\n",
    b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n",
    b"fully_quantize: 0, inference_type: 6, input_inference_type: INT8\n",
    b"WARNING:tensorflow:5 out of the last 11 calls to <function> triggered retracing\n",
]
KEPT = [
    b"keras-autoopt: error: Received: model='m.keras'; expected ...\n",
    b"E0000 00:00:1796071104.695316    8707 op_kernel.cc:1830] OP_REQUIRES failed: OOM\n",
    b"Traceback (most recent call last):\n",
]


def test_noise_dropped_and_the_rest_kept_in_order(capfd):
    with quiet_stderr():
        for line in [NOISE[0], KEPT[0], *NOISE[1:4], KEPT[1], *NOISE[4:], KEPT[2]]:
            os.write(2, line)
    err = capfd.readouterr().err.encode()
    assert err == b"".join(KEPT)


def test_fd2_restored_after_an_exception(capfd):
    try:
        with quiet_stderr():
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    os.write(2, NOISE[1])
    assert capfd.readouterr().err.encode() == NOISE[1]
