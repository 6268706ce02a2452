"""nitro-attest verify over several files or a directory: verify_batch, a line per file, a summary."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from nitro_attest import cli
from nitro_attest.testing import TestPKI

PKI = TestPKI.create()
AT = PKI.document_time.isoformat()


def write_documents(folder: Path, count: int, *, tampered: int | None = None) -> list[Path]:
    folder.mkdir()
    paths = []
    for index in range(count):
        data = PKI.document(nonce=bytes([index]))
        if index == tampered:
            data = data[:-1] + bytes([data[-1] ^ 1])
        path = folder / f"doc-{index:03d}.cbor"
        path.write_bytes(data)
        paths.append(path)
    return paths


def run(capsys: pytest.CaptureFixture[str], *arguments: str) -> tuple[int, str, str]:
    code = cli.main(["verify", "--any-enclave", "--at", AT, *arguments])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_several_files_all_verified(tmp_path: Path, root_pem: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = write_documents(tmp_path / "docs", 3)
    code, out, _ = run(capsys, "--root", str(root_pem), *map(str, paths))
    assert code == 0
    assert out.splitlines() == [
        *(f"{path}: verified" for path in paths),
        "3 documents: 3 verified, 0 rejected, 0 unreadable",
    ]


def test_a_directory_with_a_tampered_document_and_a_note(
    tmp_path: Path, root_pem: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file that is no document at all (a README) is skipped in directory mode, and counted."""
    folder = tmp_path / "docs"
    write_documents(folder, 4, tampered=2)
    (folder / "notes.txt").write_text("not a document")
    code, out, _ = run(capsys, "--root", str(root_pem), str(folder))
    assert code == 1
    lines = out.splitlines()
    assert lines[2].endswith(
        "doc-002.cbor: rejected [signature]: COSE ES384 signature does not verify with the leaf certificate's key"
    )
    assert "notes.txt" not in out
    assert lines[-1] == "4 documents: 3 verified, 1 rejected, 0 unreadable, 1 skipped (not documents)"


def test_a_named_file_that_is_no_document_is_unreadable_and_exit_2(
    tmp_path: Path, root_pem: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Named explicitly, the same note is a mistake: exit 2 as in single mode, after every verdict."""
    paths = write_documents(tmp_path / "docs", 2)
    note = tmp_path / "notes.txt"
    note.write_text("not a document")
    code, out, _ = run(capsys, "--root", str(root_pem), *map(str, paths), str(note))
    assert code == 2
    assert out.splitlines()[2].startswith(f"{note}: unreadable: {note} is not an attestation document")
    assert out.splitlines()[-1] == "3 documents: 2 verified, 0 rejected, 1 unreadable"


def test_at_document_verifies_each_at_its_own_time(
    tmp_path: Path, root_pem: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = write_documents(tmp_path / "docs", 2)
    code = cli.main(["verify", "--any-enclave", "--at", "document", "--root", str(root_pem), *map(str, paths)])
    assert code == 0, capsys.readouterr()


def test_the_aws_root_rejects_test_documents_in_a_batch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = write_documents(tmp_path / "docs", 2)
    code, out, _ = run(capsys, *map(str, paths))
    assert code == 1
    assert "rejected [chain]" in out and out.splitlines()[-1] == "2 documents: 0 verified, 2 rejected, 0 unreadable"


def test_progress_bar_on_a_terminal(
    tmp_path: Path, root_pem: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = write_documents(tmp_path / "docs", 3)
    monkeypatch.setattr(cli.documents, "_PROGRESS_MIN_DOCUMENTS", 2)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    code, _, err = run(capsys, "--root", str(root_pem), *map(str, paths))
    assert code == 0
    assert "3/3" in err


@pytest.mark.parametrize(
    ("arguments", "message"),
    [(["-", "-"], "stdin (-) can be read only once"), (["EMPTY_DIR"], "no files in it")],
)
def test_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], arguments: list[str], message: str) -> None:
    (tmp_path / "empty").mkdir()
    arguments = [str(tmp_path / "empty") if argument == "EMPTY_DIR" else argument for argument in arguments]
    code, _, err = run(capsys, *arguments)
    assert code == 2 and message in err
