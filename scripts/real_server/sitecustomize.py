"""Loaded by the llama-cpp-python server that scripts/real-server-test.sh starts.

llama.cpp repacks weights for Intel AMX when the CPU reports it; on some virtual machines that
report AMX the first matrix product then dies with a general protection fault. Loading the
model without the extra (repacking) buffer types avoids it; a small model hardly loses speed.
Every other Python process is left alone (the hook acts only where llama_cpp is installed).
"""

from __future__ import annotations

from typing import Any

try:
    import llama_cpp.llama_cpp as _llama  # type: ignore[import-not-found]
except ImportError:
    _llama = None

if _llama is not None and hasattr(_llama, "llama_model_default_params"):
    _default_params = _llama.llama_model_default_params

    def _params_without_extra_buffers() -> Any:
        """The library's default model parameters, with the extra buffer types turned off."""
        params = _default_params()
        if hasattr(params, "use_extra_bufts"):
            params.use_extra_bufts = False
        return params

    _llama.llama_model_default_params = _params_without_extra_buffers
