"""The live web viewer (``plenox view``, ``plenox fit --view``), built on viser.

ports.py    ViewerError and the busy-port check (no viser import: the CLI's error list loads it)
cameras.py  viser camera (OpenCV axes, wxyz + position) <-> OpenGL camera-to-world; view cameras
frames.py   FrameRenderer: one frame of a model from a camera (rgb / depth / opacity, background,
            clip box), in chunks that a camera move can interrupt
panel.py    the GUI panel and the scene furniture: frustums with thumbnails, clip box, key-frames
server.py   Viewer: the viser server, per-client progressive rendering with adaptive resolution,
            the standalone serve loop and the per-step training hook
"""
