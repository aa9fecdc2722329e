"""Every figure's size: 9 x 5 inches at 100 DPI, 900 x 500 pixels (no matplotlib needed to read it)."""

WIDTH_IN, HEIGHT_IN, DPI = 9.0, 5.0, 100
