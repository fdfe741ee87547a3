#!/usr/bin/env python3
"""Builds the app's bundled fonts (both SIL OFL 1.1; see OFL.txt and README.md):

- NotoSansSC-Glassbox.otf: a subset of Noto Sans CJK SC;
- NotoEmoji-Glassbox.ttf: the emoticons of Noto Emoji (monochrome), because egui's own
  emoji font lacks some (the tokens lesson shows U+1F642).

Why a subset: the full face is ~16 MB; the app needs the characters its lessons and UI use,
plus the common Simplified Chinese characters a teacher may type into a prompt.

Sources: Debian's fonts-noto-cjk (`apt-get install fonts-noto-cjk`), face index 2 ("Noto Sans
CJK SC") of NotoSansCJK-Regular.ttc; npm's @fontsource/noto-emoji 5.3.2 (`npm pack`), weight
400. Needs fonttools (`pip install fonttools`) and npm.

Run from the repository root:  python3 assets/fonts/make_subset.py
"""
import pathlib
import subprocess
import sys
import tempfile

from fontTools import subset
from fontTools.ttLib import TTCollection

ROOT = pathlib.Path(__file__).resolve().parents[2]
SRC = pathlib.Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
SC_INDEX = 2
OUT = ROOT / "assets" / "fonts" / "NotoSansSC-Glassbox.otf"
EMOJI_PACKAGE = "@fontsource/noto-emoji@5.3.2"
EMOJI_FILE = "package/files/noto-emoji-emoji-400-normal.woff"
EMOJI_OUT = ROOT / "assets" / "fonts" / "NotoEmoji-Glassbox.ttf"


def gb2312_level1():
    """The 3755 most common Simplified Chinese characters (GB2312 level 1, rows 16-55)."""
    chars = set()
    for hi in range(0xB0, 0xD8):
        for lo in range(0xA1, 0xFF):
            try:
                chars.add(bytes([hi, lo]).decode("gb2312"))
            except UnicodeDecodeError:
                pass
    return chars


def used_chars():
    """Every character in the lessons and in the GUI's source (its UI strings)."""
    chars = set()
    files = list((ROOT / "lessons").rglob("*.md")) + list((ROOT / "app" / "src" / "gui").rglob("*.rs"))
    for f in files:
        chars.update(f.read_text(encoding="utf-8"))
    return chars


def ranges():
    chars = set()
    spans = [
        (0x20, 0x7E),      # ASCII
        (0xA0, 0x17F),     # Latin-1 supplement, Latin extended-A
        (0x370, 0x3FF),    # Greek (θ, Σ, ...)
        (0x2000, 0x206F),  # general punctuation (— “ ” …)
        (0x2190, 0x21FF),  # arrows
        (0x2200, 0x22FF),  # math operators (√ ∞ − ⊙ ≈ ≤ ≥ Σ ...)
        (0x2460, 0x24FF),  # enclosed alphanumerics
        (0x25A0, 0x25FF),  # geometric shapes (▶ ■ ...)
        (0x3000, 0x303F),  # CJK symbols and punctuation (，。、《》)
        (0xFF00, 0xFFEF),  # full-width forms (（）：；？！)
    ]
    for a, b in spans:
        chars.update(chr(c) for c in range(a, b + 1))
    return chars


def main():
    if not SRC.exists():
        sys.exit(f"{SRC} not found: apt-get install fonts-noto-cjk")
    font = TTCollection(str(SRC)).fonts[SC_INDEX]
    cmap = font.getBestCmap()
    wanted = gb2312_level1() | used_chars() | ranges()
    unicodes = sorted(ord(c) for c in wanted if ord(c) in cmap)
    missing = sorted(c for c in used_chars() if ord(c) not in cmap and not c.isspace() and ord(c) > 0x7E)
    opts = subset.Options()
    opts.layout_features = ["kern", "liga", "locl", "vert", "ccmp"]
    opts.hinting = False
    opts.name_IDs = ["*"]
    opts.notdef_outline = True
    sub = subset.Subsetter(opts)
    sub.populate(unicodes=unicodes)
    sub.subset(font)
    font.save(str(OUT))
    print(f"{OUT}: {len(unicodes)} characters, {OUT.stat().st_size} bytes")
    if missing:
        print("not in Noto Sans CJK SC (egui's default fonts must cover them):", "".join(missing))


def emoji():
    """Emoticons (U+1F600-1F64F) plus any emoji the lessons use."""
    from fontTools.ttLib import TTFont

    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["npm", "pack", EMOJI_PACKAGE], cwd=tmp, check=True, capture_output=True)
        tgz = next(pathlib.Path(tmp).glob("*.tgz"))
        subprocess.run(["tar", "xzf", str(tgz)], cwd=tmp, check=True)
        font = TTFont(str(pathlib.Path(tmp) / EMOJI_FILE))
        font.flavor = None
        cmap = font.getBestCmap()
        wanted = {c for c in range(0x1F600, 0x1F650)} | {ord(c) for c in used_chars() if ord(c) >= 0x1F000}
        opts = subset.Options()
        opts.hinting = False
        opts.name_IDs = ["*"]
        sub = subset.Subsetter(opts)
        sub.populate(unicodes=sorted(c for c in wanted if c in cmap))
        sub.subset(font)
        font.save(str(EMOJI_OUT))
        print(f"{EMOJI_OUT}: {len(font.getBestCmap())} characters, {EMOJI_OUT.stat().st_size} bytes")


if __name__ == "__main__":
    main()
    emoji()
