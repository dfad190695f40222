"""The screen's stream to the terminal after the terminal went away."""

from __future__ import annotations

import os
import threading

from textual.drivers._writer_thread import MAX_QUEUED_WRITES, WriterThread

from perftop.system.stdio import terminal_stream


def test_a_hung_up_terminal_does_not_stop_textuals_output_thread() -> None:
    """Textual's output thread dies on the first error it gets from its file; the app's next
    writes then fill its queue and the one after blocks its shutdown for good."""
    leader, follower = os.openpty()
    stream = terminal_stream(follower)
    os.close(follower)
    writer = WriterThread(stream)
    writer.start()
    writer.write("\x1b[?1049h")
    os.read(leader, 100)
    os.close(leader)  # the SSH connection dropped

    def shut_down() -> None:
        for _ in range(MAX_QUEUED_WRITES * 3):
            writer.write("\x1b[?1000l" * 100)
        writer.stop()

    leaving = threading.Thread(target=shut_down, daemon=True)
    leaving.start()
    leaving.join(timeout=5.0)
    assert not leaving.is_alive(), "the screen's writes blocked on the dead terminal"
    assert stream.gone
    stream.close()  # what was buffered for the dead terminal is dropped, not raised


def test_writes_reach_a_live_terminal() -> None:
    leader, follower = os.openpty()
    stream = terminal_stream(follower)
    os.close(follower)
    try:
        stream.write("screen")
        stream.flush()
        assert os.read(leader, 100) == b"screen"
        assert not stream.gone
    finally:
        stream.close()
        os.close(leader)
