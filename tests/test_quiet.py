"""companion.quiet: C++ output silenced inside the block only, kept, and shown when the block fails."""

import os
import subprocess
import sys
import textwrap

import pytest

from companion.quiet import quiet_log, quiet_stderr, quiet_tensorflow


def run(code):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300)


def test_quiet_stderr_silences_file_descriptor_2_and_keeps_the_text():
    before = quiet_log()
    with quiet_stderr():
        os.write(2, b"from C++\n")
    assert quiet_log() == before + "from C++\n"


def test_quiet_stderr_restores_file_descriptor_2():
    result = run("""
        import os
        from companion.quiet import quiet_stderr
        with quiet_stderr():
            os.write(2, b"hidden\\n")
        os.write(2, b"shown\\n")
    """)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "shown\n"


def test_quiet_stderr_prints_the_silenced_text_when_the_block_fails():
    result = run("""
        import os
        from companion.quiet import quiet_stderr
        try:
            with quiet_stderr():
                os.write(2, b"why it failed\\n")
                raise RuntimeError("boom")
        except RuntimeError:
            pass
    """)
    assert result.returncode == 0 and result.stderr == "why it failed\n", result.stderr


def test_import_tensorflow_quietly_prints_nothing():
    """Plain `import tensorflow` prints its absl start-up lines; inside quiet_tensorflow nothing."""
    loud = run("import tensorflow as tf; tf.config.list_physical_devices()")
    assert "absl::InitializeLog" in loud.stderr or "I0000" in loud.stderr or loud.stderr == "", loud.stderr
    quiet = run("""
        from companion.quiet import quiet_log, quiet_tensorflow
        with quiet_tensorflow():
            import keras
            import tensorflow as tf
        assert tf.constant(2.0).numpy() == 2.0
        print(len(quiet_log()) > 0)
    """)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""
    if loud.stderr:
        assert quiet.stdout.strip() == "True"  # what the plain import printed was kept


@pytest.mark.parametrize("level", [-1, 4, 2.0, True, "2"])
def test_quiet_tensorflow_refuses_a_bad_log_level(level):
    with pytest.raises(ValueError, match="min_log_level"):
        with quiet_tensorflow(level):
            pass
