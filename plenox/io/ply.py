"""PLY (binary little-endian) and OBJ writers for point clouds and triangle meshes.

Written here rather than through a mesh library: both formats are a short header plus
arrays, and the library then needs no extra dependency. The files follow the conventions
trimesh, Open3D, MeshLab and Blender read: vertex properties x, y, z (float) and red,
green, blue (uchar), faces as ``list uchar int vertex_indices``; OBJ vertex colours as the
widespread ``v x y z r g b`` extension with r, g, b in [0, 1].
"""

from pathlib import Path

import numpy as np

from plenox.io.atomic import atomic_write_bytes

MESH_SUFFIXES = (".ply", ".obj")
PLY_TYPES = {np.dtype("float32"): "float", np.dtype("float64"): "double", np.dtype("uint8"): "uchar",
             np.dtype("int32"): "int", np.dtype("uint32"): "uint"}


def ply_bytes(vertices: dict[str, np.ndarray], faces: np.ndarray | None = None) -> bytes:
    """A binary little-endian PLY file.

    vertices: property name -> (V,) array, in file order (dtypes float32/64, uint8, (u)int32);
    faces: optional (F, 3) vertex indices (triangles).
    """
    names = list(vertices)
    count = len(vertices[names[0]])
    if any(len(v) != count for v in vertices.values()):
        raise ValueError("every vertex property needs the same length")
    dtype = np.dtype([(n, vertices[n].dtype.newbyteorder("<")) for n in names])
    table = np.empty(count, dtype=dtype)
    for n in names:
        table[n] = vertices[n]
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {count}"]
    header += [f"property {PLY_TYPES[vertices[n].dtype]} {n}" for n in names]
    body = [table.tobytes()]
    if faces is not None:
        tris = np.empty(len(faces), dtype=[("n", "u1"), ("v", "<i4", (3,))])
        tris["n"], tris["v"] = 3, faces
        header += [f"element face {len(faces)}", "property list uchar int vertex_indices"]
        body.append(tris.tobytes())
    header.append("end_header")
    return ("\n".join(header) + "\n").encode("ascii") + b"".join(body)


def obj_bytes(positions: np.ndarray, colors: np.ndarray, faces: np.ndarray) -> bytes:
    """A Wavefront OBJ file: positions (V, 3) float, colors (V, 3) uint8, faces (F, 3) 0-based."""
    rows = np.hstack([positions.astype(np.float64), colors.astype(np.float64) / 255.0])
    verts = "\n".join(f"v {x:.6f} {y:.6f} {z:.6f} {r:.4f} {g:.4f} {b:.4f}" for x, y, z, r, g, b in rows)
    tris = "\n".join(f"f {a} {b} {c}" for a, b, c in (faces.astype(np.int64) + 1))
    return (verts + "\n" + tris + "\n").encode("ascii")


def write_mesh(path: Path, positions: np.ndarray, colors: np.ndarray, faces: np.ndarray) -> None:
    """Write a vertex-coloured triangle mesh as PLY or OBJ, chosen by the suffix of ``path``.

    positions: (V, 3) world units; colors: (V, 3) uint8; faces: (F, 3) vertex indices.
    """
    suffix = path.suffix.lower()
    if suffix == ".obj":
        data = obj_bytes(positions, colors, faces)
    elif suffix == ".ply":
        data = ply_bytes(xyz_rgb(positions, colors), faces)
    else:
        raise ValueError(f"{path}: a mesh is written as {' or '.join(MESH_SUFFIXES)}, not {suffix or 'no suffix'!r}")
    atomic_write_bytes(path, data)


def xyz_rgb(positions: np.ndarray, colors: np.ndarray) -> dict[str, np.ndarray]:
    """PLY vertex properties x, y, z (float32) and red, green, blue (uint8) from (V, 3) arrays."""
    pos = positions.astype(np.float32)
    col = colors.astype(np.uint8)
    return {"x": pos[:, 0], "y": pos[:, 1], "z": pos[:, 2], "red": col[:, 0], "green": col[:, 1], "blue": col[:, 2]}
