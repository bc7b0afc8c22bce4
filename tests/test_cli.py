"""Specification of phys555_cl._cli: how every command line reports an error."""

import pytest

from phys555_cl._cli import run_command


def _fails(err):
    def work():
        raise err

    return work


def test_the_commands_status_is_returned_when_nothing_goes_wrong(capsys):
    assert run_command(lambda: 0, debug=False, expected=(ValueError,), expected_status=2) == 0
    assert capsys.readouterr().err == ""


def test_an_expected_error_is_its_message_in_one_line_with_its_status(capsys):
    work = _fails(FileNotFoundError("no checkpoint at 'x.pt'; train one first"))
    assert run_command(work, debug=False, expected=(OSError,), expected_status=2) == 2
    assert capsys.readouterr().err == "error: no checkpoint at 'x.pt'; train one first\n"


def test_an_unexpected_error_is_one_line_naming_its_type_and_pointing_at_debug(capsys):
    work = _fails(RuntimeError("CUDA out of memory.\nTried to allocate 2 GiB"))
    assert run_command(work, debug=False, expected=(ValueError,), expected_status=2) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: RuntimeError: CUDA out of memory.")
    assert "--debug" in err and "2 GiB" not in err


def test_debug_lets_every_error_through_with_its_traceback():
    for err in (ValueError("bad"), RuntimeError("crash")):
        with pytest.raises(type(err)):
            run_command(_fails(err), debug=True, expected=(ValueError,), expected_status=2)


def test_ctrl_c_says_what_was_kept_or_goes_through(capsys):
    work = _fails(KeyboardInterrupt())
    status = run_command(work, debug=False, expected=(ValueError,), expected_status=1,
                         interrupted="stopped (Ctrl-C); nothing was written")
    assert status == 130 and "nothing was written" in capsys.readouterr().err
    with pytest.raises(KeyboardInterrupt):
        run_command(work, debug=False, expected=(ValueError,), expected_status=1)
