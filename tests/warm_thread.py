"""A module that starts a thread when imported (tests/test_warm_stages.py: the host must not fork after it)."""

import threading
import time

threading.Thread(target=time.sleep, args=(60,), daemon=True, name="started-at-import").start()
