"""Real MP4 clips for simulated tasks: H.264 (yuv420p) video, AAC audio when asked for.

Clips are small and cheap on purpose (a 5 s clip in a few tenths of a second on two cores), but
they are genuine files: anything that probes, streams, checksums or plays a result works on them
exactly as on the provider's.
"""

from __future__ import annotations

import array
import functools
import hashlib
import io
import math
from dataclasses import dataclass

import av
from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

ASPECT_RATIOS = {"16:9": (16, 9), "9:16": (9, 16), "1:1": (1, 1)}

# Pillow's YCbCr is full range; H.264 players assume the limited (TV) range of yuv420p.
_LUMA_RANGE = [16 + value * 219 // 255 for value in range(256)]
_CHROMA_RANGE = [16 + value * 224 // 255 for value in range(256)]

# A pentatonic scale: any sequence of its notes sounds intentional.
_SCALE_HZ = (262, 294, 330, 392, 440, 523, 587, 659)


class RenderError(Exception):
    """The inputs cannot become a clip (e.g. the image is not a decodable picture)."""


@dataclass(frozen=True)
class RenderSettings:
    long_side: int = 320  # pixels along the longer edge
    fps: int = 24
    sample_rate: int = 24000
    crf: int = 28


def frame_size(width_ratio: float, height_ratio: float, long_side: int) -> tuple[int, int]:
    """Even dimensions (yuv420p needs them) with the given ratio and longer edge."""
    width: float
    height: float
    if width_ratio >= height_ratio:
        width, height = long_side, long_side * height_ratio / width_ratio
    else:
        width, height = long_side * width_ratio / height_ratio, long_side
    return max(2, round(width / 2) * 2), max(2, round(height / 2) * 2)


def render_text_to_video(
    prompt: str, *, duration: int, aspect_ratio: str, sound: bool, settings: RenderSettings
) -> bytes:
    """A drifting landscape with the prompt's words floating across it."""
    width, height = frame_size(*ASPECT_RATIOS[aspect_ratio], settings.long_side)
    seed = _seed(prompt)
    background = _landscape(width, height, seed)
    words = [_word_sprite(word, height) for word in prompt.split()[:24]] or [
        _word_sprite("…", height)
    ]
    layout = _word_layout(words, width, height, seed)
    frames = duration * settings.fps
    sun_radius = max(4, height // 10)
    with _Mp4Writer(width, height, settings, sound=sound) as writer:
        for index in range(frames):
            t = index / settings.fps
            progress = index / max(1, frames - 1)
            offset = int(progress * (background.width - width))
            frame = background.crop((offset, 0, offset + width, height))
            draw = ImageDraw.Draw(frame)
            sun_x = int(width * (0.15 + 0.7 * progress))
            sun_y = int(height * (0.35 - 0.15 * math.sin(math.pi * progress)))
            draw.ellipse(
                (sun_x - sun_radius, sun_y - sun_radius, sun_x + sun_radius, sun_y + sun_radius),
                fill=(255, 236, 170),
            )
            for sprite, (x0, y0, speed, phase) in zip(words, layout, strict=True):
                span = width + sprite.width
                x = int((x0 + speed * t) % span) - sprite.width
                y = int(y0 + 0.04 * height * math.sin(2.0 * t + phase))
                frame.paste(sprite, (x, y), sprite)
            draw.rectangle((0, height - 3, int(width * progress), height), fill=(255, 255, 255))
            writer.add_frame(frame)
        if sound:
            writer.add_audio(_melody(seed, duration, settings.sample_rate))
    return writer.data


def render_image_to_video(
    image_data: bytes, *, duration: int, sound: bool, settings: RenderSettings, motion_seed: str
) -> bytes:
    """The image under a slow camera move (zoom in, zoom out, pan left or pan right).

    Raises RenderError when the bytes are not an image Pillow can decode.
    """
    try:
        source: Image.Image = Image.open(io.BytesIO(image_data))
        source = ImageOps.exif_transpose(source).convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise RenderError(f"image cannot be decoded: {exc}") from None
    width, height = frame_size(source.width, source.height, settings.long_side)
    # Work from a copy a little larger than the frame: per-frame resizes then stay cheap.
    margin = 1.25
    work = source.resize(
        (max(width, int(width * margin)), max(height, int(height * margin))),
        Image.Resampling.BILINEAR,
        reducing_gap=2.0,
    )
    seed = _seed(motion_seed)
    move = ("zoom_in", "zoom_out", "pan_left", "pan_right")[seed % 4]
    frames = duration * settings.fps
    with _Mp4Writer(width, height, settings, sound=sound) as writer:
        for index in range(frames):
            progress = _ease(index / max(1, frames - 1))
            box = _camera_box(move, progress, work.width, work.height)
            writer.add_frame(work.resize((width, height), Image.Resampling.BILINEAR, box=box))
        if sound:
            writer.add_audio(_melody(seed, duration, settings.sample_rate))
    return writer.data


def _camera_box(
    move: str, progress: float, width: int, height: int
) -> tuple[float, float, float, float]:
    """The source rectangle shown at `progress` (0..1) of the move."""
    if move in ("zoom_in", "zoom_out"):
        zoom = progress if move == "zoom_in" else 1.0 - progress
        scale = 1.0 - 0.2 * zoom
        box_w, box_h = width * scale, height * scale
        left, top = (width - box_w) / 2, (height - box_h) / 2
    else:
        box_w, box_h = width * 0.8, height * 0.8
        travel = progress if move == "pan_right" else 1.0 - progress
        left, top = (width - box_w) * travel, (height - box_h) / 2
    return (left, top, left + box_w, top + box_h)


def _ease(x: float) -> float:
    return 0.5 - 0.5 * math.cos(math.pi * x)


def _seed(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8", "replace")).digest()[:4], "big")


def _landscape(width: int, height: int, seed: int) -> Image.Image:
    """A sky gradient with two layers of hills, twice the frame's width so the camera can pan."""
    wide = width * 2
    hue = seed % 360
    top = _hsv(hue, 0.55, 0.45)
    bottom = _hsv((hue + 40) % 360, 0.45, 0.95)
    sky = ImageOps.colorize(Image.linear_gradient("L").resize((wide, height)), top, bottom)
    draw = ImageDraw.Draw(sky)
    for layer, (shade, base, amplitude) in enumerate(((0.55, 0.72, 0.10), (0.35, 0.85, 0.07))):
        color = _hsv((hue + 120 + 30 * layer) % 360, 0.5, shade)
        frequency = 2 + (seed >> (layer * 3)) % 4
        points = [
            (
                x,
                height * base
                - height * amplitude * math.sin(2 * math.pi * frequency * x / wide + layer),
            )
            for x in range(0, wide + 8, 8)
        ]
        draw.polygon([*points, (wide, height), (0, height)], fill=color)
    return sky


def _hsv(hue: float, saturation: float, value: float) -> tuple[int, int, int]:
    image = Image.new(
        "HSV", (1, 1), (int(hue * 255 / 360), int(saturation * 255), int(value * 255))
    )
    return image.convert("RGB").getpixel((0, 0))  # type: ignore[return-value]


@functools.lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (OSError, ImportError):  # Pillow built without FreeType: fixed-size bitmap font
        return ImageFont.load_default()


@functools.lru_cache(maxsize=1024)
def _word_sprite(word: str, frame_height: int) -> Image.Image:
    """A word in white with a dark shadow on a transparent tile (drawn once, pasted per frame)."""
    font = _font(max(10, frame_height // 9))
    left, top, right, bottom = font.getbbox(word)
    # Whole pixels (the box has fractions only for a fractional stroke width, unused here).
    sprite = Image.new("RGBA", (int(right - left) + 3, int(bottom - top) + 3), (0, 0, 0, 0))
    draw = ImageDraw.Draw(sprite)
    draw.text((2 - left, 2 - top), word, font=font, fill=(0, 0, 0, 160))
    draw.text((-left, -top), word, font=font, fill=(255, 255, 255, 255))
    return sprite


def _word_layout(
    words: list[Image.Image], width: int, height: int, seed: int
) -> list[tuple[float, float, float, float]]:
    """Start x, line y, speed (px/s) and bobbing phase for each word."""
    rows = max(1, min(len(words), 4))
    line_height = height * 0.6 / rows
    layout = []
    for index in range(len(words)):
        row = index % rows
        x0 = (index // rows) * (width / 3) + ((seed >> index % 16) % 17) * 3
        y0 = height * 0.12 + row * line_height
        speed = width / 6 * (1 + 0.15 * row)
        layout.append((x0, y0, speed, index * 0.9))
    return layout


def _melody(seed: int, duration: int, sample_rate: int) -> bytes:
    """Signed 16-bit mono PCM: half-second notes picked from the scale by the seed."""
    notes = []
    state = seed or 1
    for _ in range(duration * 2):
        state = (state * 1103515245 + 12345) & 0x7FFFFFFF
        notes.append(_note(_SCALE_HZ[state % len(_SCALE_HZ)], sample_rate))
    return b"".join(notes)


@functools.lru_cache(maxsize=64)
def _note(frequency: int, sample_rate: int) -> bytes:
    length = sample_rate // 2
    attack = sample_rate // 100
    samples = array.array("h", bytes(2 * length))
    step = 2 * math.pi * frequency / sample_rate
    for k in range(length):
        envelope = min(1.0, k / attack) * (1.0 - k / length)
        samples[k] = int(7000 * envelope * math.sin(step * k))
    return samples.tobytes()


class _Mp4Writer:
    """Muxes PIL frames and PCM audio into an in-memory MP4."""

    AUDIO_CHUNK = 1024  # AAC's frame size: a frame of this many samples maps to one packet

    def __init__(self, width: int, height: int, settings: RenderSettings, *, sound: bool) -> None:
        self.width, self.height = width, height
        self.settings = settings
        self._buffer = io.BytesIO()
        self._container = av.open(self._buffer, mode="w", format="mp4")
        self._video = self._container.add_stream("libx264", rate=settings.fps)
        self._video.width, self._video.height = width, height
        self._video.pix_fmt = "yuv420p"
        self._video.codec_context.options = {"preset": "ultrafast", "crf": str(settings.crf)}
        # One thread per clip: the simulator renders several clips side by side instead.
        self._video.codec_context.thread_count = 1
        self._audio = None
        if sound:
            self._audio = self._container.add_stream("aac", rate=settings.sample_rate)
            self._audio.codec_context.layout = "mono"
        self._frame_index = 0
        self.data = b""

    def __enter__(self) -> _Mp4Writer:
        return self

    def __exit__(self, exc_type: object, exc: object, traceback: object) -> None:
        if exc_type is None:
            for packet in self._video.encode():
                self._container.mux(packet)
            if self._audio is not None:
                for packet in self._audio.encode():
                    self._container.mux(packet)
        self._container.close()
        if exc_type is None:
            self.data = self._buffer.getvalue()

    def add_frame(self, image: Image.Image) -> None:
        frame = _yuv420p_frame(image)
        frame.pts = self._frame_index
        self._frame_index += 1
        for packet in self._video.encode(frame):
            self._container.mux(packet)

    def add_audio(self, pcm: bytes) -> None:
        assert self._audio is not None
        rate = self.settings.sample_rate
        chunk_bytes = self.AUDIO_CHUNK * 2
        for start in range(0, len(pcm), chunk_bytes):
            chunk = pcm[start : start + chunk_bytes]
            frame = av.AudioFrame(format="s16", layout="mono", samples=len(chunk) // 2)
            plane = frame.planes[0]
            plane.update(chunk + bytes(plane.buffer_size - len(chunk)))
            frame.sample_rate = rate
            frame.pts = start // 2
            for packet in self._audio.encode(frame):
                self._container.mux(packet)


def _yuv420p_frame(image: Image.Image) -> av.VideoFrame:
    """Convert with Pillow (about three times faster than swscale at these sizes)."""
    luma, blue, red = image.convert("YCbCr").split()
    frame = av.VideoFrame(image.width, image.height, "yuv420p")
    channels = (
        (luma, _LUMA_RANGE),
        (blue.reduce(2), _CHROMA_RANGE),
        (red.reduce(2), _CHROMA_RANGE),
    )
    for plane, (channel, table) in zip(frame.planes, channels, strict=True):
        channel = channel.point(table)
        if plane.line_size != channel.width:  # rows are padded for alignment
            padded = Image.new("L", (plane.line_size, channel.height))
            padded.paste(channel, (0, 0))
            channel = padded
        plane.update(channel.tobytes())
    return frame
