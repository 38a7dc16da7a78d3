"""Per-ray maths of the Plenoxels renderer, written once for every target.

Everything here is plain Python restricted to what both ``numba.njit`` and
``numba.cuda.jit(device=True)`` compile: scalars, tuples, indexing into arrays passed
in by the caller, ``math`` functions and calls to other functions of this module.
Nothing allocates. ``kernels.targets.compile_functions`` compiles DEVICE_FUNCTIONS with
njit for ``kernels.cpu`` and with ``cuda.jit(device=True)`` for the CUDA target, which
swaps in atomic versions of ``add1``, ``add2`` and ``max1``.

Conventions (docs/architecture.md, Conventions; as svox2):
  * grid coordinates: voxel centres at integers 0..R-1; the grid box spans [-0.5, R-0.5]
    per axis; world = center + radius * (2 * (g + 0.5) / R - 1), i.e.
    g = world * scale + offset with scale = R / (2 radius), offset = R / 2 - 0.5 - center * scale;
  * ``links[i, j, k] >= 0`` indexes the packed rows of ``density`` (N,) and ``sh`` (N, 3B)
    (channel-major: B red coefficients, then green, then blue); a negative link reads as zero;
  * a ray marches in grid space with a direction of unit grid length, at ``step`` voxels
    per sample; ``world_step`` is the world length of one step, used for alpha and depth;
  * the optional background (svox2's multi-sphere image) lies outside the box's inscribed
    sphere, in the box's normalised coordinates n = (g + 0.5) * 2 / R - 1 (the box is
    [-1, 1]^3 there): see ``march_background``. Without one its arrays have no rows.
"""

import math

# Real SH constants (svox2 / PlenOctrees convention).
C0 = 0.28209479177387814
C1 = 0.4886025119029199
C2_0 = 1.0925484305920792
C2_1 = -1.0925484305920792
C2_2 = 0.31539156525252005
C2_3 = -1.0925484305920792
C2_4 = 0.5462742152960396
C3_0 = -0.5900435899266435
C3_1 = 2.890611442640554
C3_2 = -0.4570457994644658
C3_3 = 0.3731763325901154
C3_4 = -0.4570457994644658
C3_5 = 1.445305721320277
C3_6 = -0.5900435899266435

# The block-occupancy structure groups 2**BLOCK_SHIFT cells per axis.
BLOCK_SHIFT = 3

# march_ray's scratch array ``basis`` (of the data dtype) holds the ray's SH basis in
# [0, 16) and, per sample, a contiguous row of 3B values in [COEF, COEF + 3B): first the
# trilinear SH coefficients (interp_rgb), then, when scattering, the colour gradient per SH
# coefficient, which each corner's gradient row adds in a single sweep.
COEF = 16
SCRATCH_SIZE = COEF + 3 * 16

# What march_ray does besides compositing.
MODE_FORWARD = 0      # render only
MODE_BACKWARD = 1     # scatter dL/d(density) and dL/d(sh)
MODE_MAX_WEIGHT = 2   # record each voxel's largest sample weight (for pruning)

# The ray-marching settings every ray kernel takes as one tuple of floats, in this order.
MARCH_FIELDS = ("step", "sigma_thresh", "stop_thresh", "bg_r", "bg_g", "bg_b")

# svox2's margin on a ray's closest approach to the centre where the background starts
# (keeps the sphere intersections of the first layers real).
BG_SHELL = 1e-3


def sh_basis(x, y, z, n_basis, out):
    """Write the first ``n_basis`` (1, 4, 9 or 16) real SH values of unit direction (x, y, z) to ``out``."""
    out[0] = C0
    if n_basis > 1:
        out[1] = -C1 * y
        out[2] = C1 * z
        out[3] = -C1 * x
    if n_basis > 4:
        xx = x * x
        yy = y * y
        zz = z * z
        out[4] = C2_0 * x * y
        out[5] = C2_1 * y * z
        out[6] = C2_2 * (2.0 * zz - xx - yy)
        out[7] = C2_3 * x * z
        out[8] = C2_4 * (xx - yy)
        if n_basis > 9:
            out[9] = C3_0 * y * (3.0 * xx - yy)
            out[10] = C3_1 * x * y * z
            out[11] = C3_2 * y * (4.0 * zz - xx - yy)
            out[12] = C3_3 * z * (2.0 * zz - 3.0 * xx - 3.0 * yy)
            out[13] = C3_4 * x * (4.0 * zz - xx - yy)
            out[14] = C3_5 * z * (xx - yy)
            out[15] = C3_6 * x * (xx - 3.0 * yy)


def slab(o, d, lo, hi):
    """Entry and exit parameters of the line o + t d through the slab [lo, hi] (one axis)."""
    if d == 0.0:
        if o < lo or o > hi:
            return math.inf, -math.inf
        return -math.inf, math.inf
    t1 = (lo - o) / d
    t2 = (hi - o) / d
    if t1 > t2:
        return t2, t1
    return t1, t2


def ray_box(ox, oy, oz, dx, dy, dz, rx, ry, rz):
    """(tmin, tmax) of a grid-space ray inside the grid box [-0.5, R-0.5]^3; tmin > tmax on a miss."""
    a0, a1 = slab(ox, dx, -0.5, rx - 0.5)
    b0, b1 = slab(oy, dy, -0.5, ry - 0.5)
    c0, c1 = slab(oz, dz, -0.5, rz - 0.5)
    return max(a0, b0, c0), min(a1, b1, c1)


def cell_coord(p, reso):
    """Clamp grid coordinate ``p`` to [0, R-1]; return (cell index in 0..R-2, fraction in [0, 1])."""
    p = min(max(p, 0.0), reso - 1.0)
    lo = min(int(p), reso - 2)
    return lo, p - lo


def corners(links, lx, ly, lz, fx, fy, fz, idx, wts):
    """Fill idx[0:8] with the links of cell (lx, ly, lz)'s corners and wts[0:8] with trilinear weights."""
    n = 0
    for i in range(2):
        wx = fx if i == 1 else 1.0 - fx
        for j in range(2):
            wy = fy if j == 1 else 1.0 - fy
            for k in range(2):
                wz = fz if k == 1 else 1.0 - fz
                idx[n] = links[lx + i, ly + j, lz + k]
                wts[n] = wx * wy * wz
                n += 1


def interp_density(density, idx, wts):
    """Trilinear raw density from the 8 corners (empty corners read as zero)."""
    s = 0.0
    for n in range(8):
        if idx[n] >= 0:
            s += wts[n] * density[idx[n]]
    return s


def interp_rgb(sh, idx, wts, basis, n_basis):
    """Unclamped colour (r, g, b): sum_k basis[k] * trilinear(sh[:, c * B + k]) + 0.5 per channel.

    The trilinear SH row is accumulated in ``basis[COEF:COEF + 3B]`` first: a contiguous
    sweep per corner in the data's dtype, which vectorises (float32: 8 lanes) where three
    interleaved float64 dot products did not."""
    width = 3 * n_basis
    for j in range(width):
        basis[COEF + j] = 0.0
    for n in range(8):
        row = idx[n]
        if row >= 0:
            w = wts[n]
            for j in range(width):
                basis[COEF + j] += w * sh[row, j]
    r = 0.0
    g = 0.0
    b = 0.0
    for k in range(n_basis):
        r += basis[k] * basis[COEF + k]
        g += basis[k] * basis[COEF + n_basis + k]
        b += basis[k] * basis[COEF + 2 * n_basis + k]
    return r + 0.5, g + 0.5, b + 0.5


def block_exit(px, py, pz, dx, dy, dz, bx, by, bz, nbx, nby, nbz):
    """Ray parameter (relative to the current point) at which the ray leaves block (bx, by, bz).

    Blocks on the grid's border extend to infinity outwards, because positions past the
    border clamp into them.
    """
    size = 1 << BLOCK_SHIFT
    ex = _axis_exit(px, dx, bx * size, (bx + 1) * size, bx == 0, bx == nbx - 1)
    ey = _axis_exit(py, dy, by * size, (by + 1) * size, by == 0, by == nby - 1)
    ez = _axis_exit(pz, dz, bz * size, (bz + 1) * size, bz == 0, bz == nbz - 1)
    return min(ex, ey, ez)


def _axis_exit(p, d, lo, hi, open_lo, open_hi):
    if d > 0.0 and not open_hi:
        return (hi - p) / d
    if d < 0.0 and not open_lo:
        return (lo - p) / d
    return math.inf


def block_active(links, density, sigma_thresh, bx, by, bz):
    """1 if some cell of block (bx, by, bz) has a corner voxel with density > sigma_thresh, else 0.

    Samples in any other block interpolate corners that are all <= sigma_thresh (empty
    corners read 0, and sigma_thresh >= 0), so the sigma gate would skip them: marking the
    block empty for march_ray changes no output and no gradient.
    """
    size = 1 << BLOCK_SHIFT
    # Cells b*size .. (b+1)*size-1 (at most R-2) span voxels b*size .. min((b+1)*size, R-1).
    for x in range(bx * size, min((bx + 1) * size, links.shape[0] - 1) + 1):
        for y in range(by * size, min((by + 1) * size, links.shape[1] - 1) + 1):
            for z in range(bz * size, min((bz + 1) * size, links.shape[2] - 1) + 1):
                row = links[x, y, z]
                if row >= 0 and density[row] > sigma_thresh:
                    return 1
    return 0


def add1(arr, i, v):
    """arr[i] += v. The CPU default; the CUDA target rebinds this name to an atomic add."""
    arr[i] += v


def add2(arr, i, j, v):
    """arr[i, j] += v. The CPU default; the CUDA target rebinds this name to an atomic add."""
    arr[i, j] += v


def max1(arr, i, v):
    """arr[i] = max(arr[i], v). The CPU default; the CUDA target rebinds this name to an atomic max."""
    if v > arr[i]:
        arr[i] = v


def march_ray(links, density, sh, n_basis, occ, scale, offset, bg_links, bg_density, bg_rgb, ray, march,
              basis, idx, wts, mode, colour, grad_density, grad_sh, touched, grad_bg_density, grad_bg_rgb,
              bg_touched):
    """March one world-space ray ``ray`` = (ox, oy, oz, dx, dy, dz); return (r, g, b, depth, opacity).

    ``march`` = (step, sigma_thresh, stop_thresh, bg_r, bg_g, bg_b): the ray-marching settings
    (MARCH_FIELDS), one tuple from the caller down to here. ``colour`` = (out_r, out_g, out_b,
    g_r, g_g, g_b) is read in MODE_BACKWARD only.

    MODE_FORWARD: the gradient arguments are not touched.
    MODE_BACKWARD: colour holds this ray's forward colour and dL/dcolour; the march is recomputed (O(1) memory) and dL/d(raw density) and dL/d(sh)
    are scattered into grad_density (N,) and grad_sh (N, 3B), with touched[row] set to 1
    for every corner row that received a gradient (the background's likewise, see
    march_background).
    MODE_MAX_WEIGHT: grad_density (N,) receives, per voxel, the largest weight of any
    sample it is a corner of; the other gradient arguments are not touched and the
    background is not marched (it comes after every voxel sample and changes no weight).
    ``occ`` is the block occupancy (uint8, cells grouped 2**BLOCK_SHIFT per axis);
    ``scale``/``offset`` (3,) map world to grid coordinates; ``bg_links`` (2R', R') int32,
    ``bg_density`` (K, L) and ``bg_rgb`` (K, 3L) are the background (no rows: none); ``basis``
    (SCRATCH_SIZE,), ``idx`` (8, int) and ``wts`` (8,) are caller-provided scratch. Depth
    is in world units along the unit direction from the origin; opacity is 1 - final
    transmittance (background samples included).
    """
    ox, oy, oz, dx, dy, dz = ray
    step, sigma_thresh, stop_thresh, bg_r, bg_g, bg_b = march
    out_r, out_g, out_b, g_r, g_g, g_b = colour
    rx = links.shape[0]
    ry = links.shape[1]
    rz = links.shape[2]
    dn = math.sqrt(dx * dx + dy * dy + dz * dz)
    sh_basis(dx / dn, dy / dn, dz / dn, n_basis, basis)

    gox = ox * scale[0] + offset[0]
    goy = oy * scale[1] + offset[1]
    goz = oz * scale[2] + offset[2]
    gdx = dx / dn * scale[0]
    gdy = dy / dn * scale[1]
    gdz = dz / dn * scale[2]
    world_per_unit = 1.0 / math.sqrt(gdx * gdx + gdy * gdy + gdz * gdz)
    gdx *= world_per_unit
    gdy *= world_per_unit
    gdz *= world_per_unit
    world_step = world_per_unit * step

    accum = out_r * g_r + out_g * g_g + out_b * g_b
    trans = 1.0
    cr = 0.0
    cg = 0.0
    cb = 0.0
    depth = 0.0
    tmin, tmax = ray_box(gox, goy, goz, gdx, gdy, gdz, rx, ry, rz)
    tmin = max(tmin, 0.0)
    if tmin <= tmax:
        n_steps = int(math.floor((tmax - tmin) / step)) + 1
        k = 0
        while k < n_steps:
            t = tmin + k * step
            px = gox + t * gdx
            py = goy + t * gdy
            pz = goz + t * gdz
            lx, fx = cell_coord(px, rx)
            ly, fy = cell_coord(py, ry)
            lz, fz = cell_coord(pz, rz)
            bx = lx >> BLOCK_SHIFT
            by = ly >> BLOCK_SHIFT
            bz = lz >> BLOCK_SHIFT
            if occ[bx, by, bz] == 0:
                # Every sample inside an empty block reads zero density: jump past the block.
                # The small backoff keeps rounding from skipping a sample of the next block.
                dt = block_exit(px, py, pz, gdx, gdy, gdz, bx, by, bz,
                                occ.shape[0], occ.shape[1], occ.shape[2])
                if dt == math.inf:
                    break
                k = max(k + 1, int(math.ceil((t + dt - tmin) / step - 1e-4)))
                continue
            corners(links, lx, ly, lz, fx, fy, fz, idx, wts)
            sigma = interp_density(density, idx, wts)
            if sigma > sigma_thresh:
                alpha = 1.0 - math.exp(-sigma * world_step)
                weight = trans * alpha
                c0, c1, c2 = interp_rgb(sh, idx, wts, basis, n_basis)
                m0 = max(c0, 0.0)
                m1 = max(c1, 0.0)
                m2 = max(c2, 0.0)
                trans *= 1.0 - alpha
                if mode == MODE_BACKWARD:
                    total = m0 * g_r + m1 * g_g + m2 * g_b
                    accum -= weight * total
                    dsigma = world_step * (trans * total - accum)
                    scatter_sample(n_basis, idx, wts, basis, weight, dsigma,
                                   c0 > 0.0, c1 > 0.0, c2 > 0.0, g_r, g_g, g_b,
                                   grad_density, grad_sh, touched)
                else:
                    if mode == MODE_MAX_WEIGHT:
                        record_max_weight(idx, weight, grad_density)
                    cr += weight * m0
                    cg += weight * m1
                    cb += weight * m2
                    depth += weight * t * world_per_unit
                if trans < stop_thresh:
                    break
            k += 1
    if bg_links.shape[0] > 0 and mode != MODE_MAX_WEIGHT and trans >= stop_thresh:
        # The background continues the same ray (same transmittance and, backwards, the same
        # accum) in the box's normalised coordinates, where a unit step is 1 / nlen grid units.
        ndx = gdx * 2.0 / rx
        ndy = gdy * 2.0 / ry
        ndz = gdz * 2.0 / rz
        nlen = math.sqrt(ndx * ndx + ndy * ndy + ndz * ndz)
        ray_n = ((gox + 0.5) * 2.0 / rx - 1.0, (goy + 0.5) * 2.0 / ry - 1.0, (goz + 0.5) * 2.0 / rz - 1.0,
                 ndx / nlen, ndy / nlen, ndz / nlen)
        br, bgc, bb, bdepth, trans = march_background(
            bg_links, bg_density, bg_rgb, ray_n, world_per_unit / nlen, step, sigma_thresh, stop_thresh,
            trans, accum, mode, g_r, g_g, g_b, idx, wts, grad_bg_density, grad_bg_rgb, bg_touched)
        cr += br
        cg += bgc
        cb += bb
        depth += bdepth
    return cr + trans * bg_r, cg + trans * bg_g, cb + trans * bg_b, depth, 1.0 - trans


def bg_start_radius(ox, oy, oz, dx, dy, dz):
    """(start, b, oo) of a ray with normalised origin o and unit direction d: b = o . d,
    oo = |o|^2, and the radius (>= 1) at which its background part starts.

    The background samples a ray where its distance from the centre grows: past its closest
    approach (svox2's inner radius: that distance plus BG_SHELL) or, when the closest
    approach lies behind the origin, from the origin on."""
    b = ox * dx + oy * dy + oz * dz
    oo = ox * ox + oy * oy + oz * oz
    if b < 0.0:
        start = math.sqrt(max(oo - b * b, 0.0)) + BG_SHELL
    else:
        start = math.sqrt(oo)
    return max(start, 1.0), b, oo


def bg_corners(bg_links, ux, uy, uz, z, n_layers, idx, wts):
    """The background's 8 interpolation corners around unit direction u at layer coordinate z.

    Equirectangular map about the z axis: pixel (i, j) of bg_links (2R, R) sits at longitude
    atan2(y, x) = pi (i / R - 1) and latitude asin(z) = pi (1/2 - j / R); longitude wraps,
    latitude and the layer coordinate clamp. Fills idx[0:8] with the corners' rows (negative:
    empty) and wts[0:8] with their weights; corner n reads layer lz + (n & 1). Returns lz."""
    width = bg_links.shape[0]
    reso = bg_links.shape[1]
    lat = math.asin(min(max(uz, -1.0), 1.0))
    lon = math.atan2(uy, ux)
    x = min(max(reso * (1.0 + lon / math.pi), 0.0), 1.0 * width)
    y = reso * (0.5 - lat / math.pi)
    lx = min(int(x), width - 1)
    fx = x - lx
    nx = lx + 1 if lx + 1 < width else 0
    ly, fy = cell_coord(y, reso)
    lz, fz = cell_coord(z, n_layers)
    n = 0
    for i in range(2):
        px = nx if i == 1 else lx
        wx = fx if i == 1 else 1.0 - fx
        for j in range(2):
            wy = fy if j == 1 else 1.0 - fy
            row = bg_links[px, ly + j]
            for k in range(2):
                idx[n] = row
                wts[n] = wx * wy * (fz if k == 1 else 1.0 - fz)
                n += 1
    return lz


def bg_value(data, idx, wts, lz, stride, col):
    """Interpolated data[row, stride * layer + col] over the corners bg_corners filled."""
    s = 0.0
    for n in range(8):
        row = idx[n]
        if row >= 0:
            s += wts[n] * data[row, stride * (lz + (n & 1)) + col]
    return s


def march_background(bg_links, bg_density, bg_rgb, ray_n, world_per_n, step, sigma_thresh, stop_thresh,
                     trans, accum, mode, g_r, g_g, g_b, idx, wts, grad_bg_density, grad_bg_rgb, bg_touched):
    """The background part of a ray (svox2's multi-sphere image); returns (r, g, b, depth, trans).

    ``ray_n`` = (origin, unit direction) in the box's normalised coordinates, where the box is
    [-1, 1]^3; ``world_per_n`` is the world length of a unit step there. The background is L
    layers (bg_density (K, L), bg_rgb (K, 3L): raw r, g, b per layer) of an equirectangular
    map (bg_links (2R, R), see bg_corners); layer coordinate z = (1 - 1/r) L - 0.5, so layers
    are uniform in inverse radius between the unit sphere and infinity. The ray samples the
    spheres of radius r_i = n / (n - i - 0.5), n = int(L / step) + 2, past its start radius
    (bg_start_radius), at their far intersection; sample i covers the inverse-radius interval
    since the previous one, so alpha = 1 - exp(-sigma * (1/r_prev - 1/r_i) * world_per_n), and
    its colour is max(C0 * raw + 0.5, 0) (svox2's scaling of the rgb data). ``trans`` is the
    transmittance the foreground left; the march stops as the foreground's does.
    MODE_BACKWARD: ``accum`` is svox2's running remainder after the foreground (forward
    colour . g minus what the foreground samples took); dL/d(raw density) and dL/d(raw rgb)
    are scattered into grad_bg_density and grad_bg_rgb and bg_touched[row, layer] set to 1.
    """
    ox, oy, oz, dx, dy, dz = ray_n
    n_layers = bg_density.shape[1]
    inner, b, oo = bg_start_radius(ox, oy, oz, dx, dy, dz)
    n_spheres = int(n_layers / step) + 2
    invr_last = 1.0 / inner
    cr = 0.0
    cg = 0.0
    cb = 0.0
    depth = 0.0
    for i in range(n_spheres):
        r = n_spheres / (n_spheres - i - 0.5)
        if r < inner:
            continue
        disc = b * b - oo + r * r
        if disc < 0.0:
            continue
        t = math.sqrt(disc) - b
        invr = 1.0 / r
        lz = bg_corners(bg_links, (ox + t * dx) * invr, (oy + t * dy) * invr, (oz + t * dz) * invr,
                        (1.0 - invr) * n_layers - 0.5, n_layers, idx, wts)
        sigma = bg_value(bg_density, idx, wts, lz, 1, 0)
        dt = (invr_last - invr) * world_per_n
        invr_last = invr
        if sigma > sigma_thresh:
            alpha = 1.0 - math.exp(-sigma * dt)
            weight = trans * alpha
            c0 = C0 * bg_value(bg_rgb, idx, wts, lz, 3, 0) + 0.5
            c1 = C0 * bg_value(bg_rgb, idx, wts, lz, 3, 1) + 0.5
            c2 = C0 * bg_value(bg_rgb, idx, wts, lz, 3, 2) + 0.5
            m0 = max(c0, 0.0)
            m1 = max(c1, 0.0)
            m2 = max(c2, 0.0)
            trans *= 1.0 - alpha
            if mode == MODE_BACKWARD:
                total = m0 * g_r + m1 * g_g + m2 * g_b
                accum -= weight * total
                scatter_background(idx, wts, lz, weight, dt * (trans * total - accum),
                                   c0 > 0.0, c1 > 0.0, c2 > 0.0, g_r, g_g, g_b,
                                   grad_bg_density, grad_bg_rgb, bg_touched)
            else:
                cr += weight * m0
                cg += weight * m1
                cb += weight * m2
                depth += weight * t * world_per_n
            if trans < stop_thresh:
                break
    return cr, cg, cb, depth, trans


def scatter_background(idx, wts, lz, weight, dsigma, on_r, on_g, on_b, g_r, g_g, g_b,
                       grad_bg_density, grad_bg_rgb, bg_touched):
    """Scatter one background sample's gradients to its 8 corners (colour only where it was not clamped)."""
    sr = C0 * weight * g_r if on_r else 0.0
    sg = C0 * weight * g_g if on_g else 0.0
    sb = C0 * weight * g_b if on_b else 0.0
    for n in range(8):
        row = idx[n]
        if row < 0:
            continue
        layer = lz + (n & 1)
        w = wts[n]
        add2(grad_bg_density, row, layer, w * dsigma)
        add2(grad_bg_rgb, row, 3 * layer, w * sr)
        add2(grad_bg_rgb, row, 3 * layer + 1, w * sg)
        add2(grad_bg_rgb, row, 3 * layer + 2, w * sb)
        bg_touched[row, layer] = 1


def march_ray_at(r, links, density, sh, n_basis, occ, scale, offset, bg_links, bg_density, bg_rgb, origins, dirs,
                 march, basis, idx, wts, mode, rgb, grad_rgb, grad_density, grad_sh, touched,
                 grad_bg_density, grad_bg_rgb, bg_touched):
    """march_ray for ray ``r`` of ``origins`` and ``dirs`` (M, 3) under the settings ``march``.

    This is the whole per-ray body of every target's kernels. ``rgb`` and ``grad_rgb``
    (M, 3) are read only in MODE_BACKWARD (the forward colours and dL/dcolour); other modes
    may pass any (M, 3) array of the data dtype.
    """
    colour = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    if mode == MODE_BACKWARD:
        colour = (rgb[r, 0] * 1.0, rgb[r, 1] * 1.0, rgb[r, 2] * 1.0,
                  grad_rgb[r, 0] * 1.0, grad_rgb[r, 1] * 1.0, grad_rgb[r, 2] * 1.0)
    # "* 1.0" widens float32 rays to float64 (numba's float() would not): in float32 the unit
    # direction depends on how each compiler fuses multiply-adds, which moved the samples of
    # a long ray enough to change its gradients by 1e-5 between the CPU and the GPU.
    ray = (origins[r, 0] * 1.0, origins[r, 1] * 1.0, origins[r, 2] * 1.0,
           dirs[r, 0] * 1.0, dirs[r, 1] * 1.0, dirs[r, 2] * 1.0)
    return march_ray(links, density, sh, n_basis, occ, scale, offset, bg_links, bg_density, bg_rgb, ray, march,
                     basis, idx, wts, mode, colour, grad_density, grad_sh, touched, grad_bg_density, grad_bg_rgb,
                     bg_touched)


def scatter_sample(n_basis, idx, wts, basis, weight, dsigma, on_r, on_g, on_b,
                   g_r, g_g, g_b, grad_density, grad_sh, touched):
    """Scatter one sample's gradients to its 8 corners (colour only where it was not clamped);
    ``basis`` holds the SH basis and receives the per-coefficient gradients (see COEF)."""
    sr = weight * g_r if on_r else 0.0
    sg = weight * g_g if on_g else 0.0
    sb = weight * g_b if on_b else 0.0
    width = 3 * n_basis
    for k in range(n_basis):
        basis[COEF + k] = basis[k] * sr
        basis[COEF + n_basis + k] = basis[k] * sg
        basis[COEF + 2 * n_basis + k] = basis[k] * sb
    for n in range(8):
        row = idx[n]
        if row < 0:
            continue
        w = wts[n]
        add1(grad_density, row, w * dsigma)
        touched[row] = 1
        for j in range(width):
            add2(grad_sh, row, j, w * basis[COEF + j])


def record_max_weight(idx, weight, max_weight):
    """max_weight[row] = max(max_weight[row], weight) for the linked corners in idx."""
    for n in range(8):
        if idx[n] >= 0:
            max1(max_weight, idx[n], weight)


def fit_ray_at(r, links, density, sh, n_basis, occ, scale, offset, bg_links, bg_density, bg_rgb, origins, dirs,
               march, basis, idx, wts, target, loss_scale, out_rgb, grad_rgb, no_d, no_sh, no_touch, no_bg_d,
               no_bg_rgb, no_bg_touch, grad_density, grad_sh, touched, grad_bg_density, grad_bg_rgb, bg_touched):
    """One training ray of a squared-error loss, forward and backward in one go (the ray's
    voxels are still in cache for the second march): its colour into out_rgb[r], dL/dcolour =
    loss_scale * (colour - target[r]) into grad_rgb[r] (loss_scale = 2 / (3M) for the mean over
    M rays' channels), then MODE_BACKWARD's scatter. ``no_*`` are the forward march's stand-ins
    for the gradient arrays (as the forward kernels pass)."""
    res = march_ray_at(r, links, density, sh, n_basis, occ, scale, offset, bg_links, bg_density, bg_rgb,
                       origins, dirs, march, basis, idx, wts, MODE_FORWARD, out_rgb, out_rgb,
                       no_d, no_sh, no_touch, no_bg_d, no_bg_rgb, no_bg_touch)
    for c in range(3):
        out_rgb[r, c] = res[c]
        grad_rgb[r, c] = loss_scale * (out_rgb[r, c] - target[r, c])
    march_ray_at(r, links, density, sh, n_basis, occ, scale, offset, bg_links, bg_density, bg_rgb,
                 origins, dirs, march, basis, idx, wts, MODE_BACKWARD, out_rgb, grad_rgb,
                 grad_density, grad_sh, touched, grad_bg_density, grad_bg_rgb, bg_touched)


# Functions compiled for a target, callees before callers.
DEVICE_FUNCTIONS = (
    "block_active", "add1", "add2", "max1", "sh_basis", "slab", "ray_box", "cell_coord", "corners",
    "interp_density", "interp_rgb", "_axis_exit", "block_exit",
    "scatter_sample", "record_max_weight", "bg_start_radius", "bg_corners", "bg_value", "scatter_background",
    "march_background", "march_ray", "march_ray_at", "fit_ray_at",
)
