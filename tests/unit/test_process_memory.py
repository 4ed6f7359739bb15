"""Large message buffers go back to the system when freed (gateway/process_memory.py)."""

from __future__ import annotations

import platform

import pytest

from gateway import process_memory


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the setting is glibc's")
def test_glibc_takes_the_fixed_mmap_threshold():
    assert process_memory.return_large_buffers() is True


def test_a_c_library_without_the_setting_is_left_alone(monkeypatch):
    monkeypatch.setattr(process_memory.ctypes.util, "find_library", lambda name: None)
    assert process_memory.return_large_buffers() is False
