"""A page that fails inside Enclave's error boundary (for test_app_misc)."""

from ui.errors import error_boundary

if __name__ == "__main__":
    with error_boundary("probe"):
        raise RuntimeError("internal detail /etc/secret")
