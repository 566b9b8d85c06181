import CKernels

/// Convolution (im2col + GEMM) and pooling.
extension Executor {
    // MARK: convolution

    /// im2col + GEMM, per image and group. A 1x1 convolution with unit stride reads the image
    /// in place. The patch matrix is one buffer reused across images; each fill is counted as
    /// a copy with reason `.im2col`.
    /// With `pool`, `out` is the pooling's (`pooledShape`): the convolution and its epilogue go
    /// to a scratch buffer the pooling reads, unless Winograd pools each tile itself.
    mutating func runConv(_ kernel: Kernel, product: Node, x: Program.Leaf, w: Program.Leaf, bias: Program.Leaf?,
                          into pooledOut: UnsafeMutablePointer<Float>, storage pooledStorage: Storage, pool: Pool2DParameters?,
                          pooledShape: [Int]) {
        guard case let .conv2d(p) = product.op else { return }
        let xs = x.node.shape, ws = w.node.shape, os = product.shape
        let (n, h, wd) = (xs[0], xs[2], xs[3])
        let (o, cg, kh, kw) = (ws[0], ws[1], ws[2], ws[3])
        let (ho, wo) = (os[2], os[3])
        let g = p.groups, og = o / g
        let k = cg * kh * kw, positions = ho * wo
        let X = access(x), W = access(w)
        let lowering = ConvolutionLowering(x: xs, w: ws, out: os, p, X: X, W: W)
        var (out, storage, pooling) = (pooledOut, pooledStorage, ConvolutionPooling?.none)
        if let pool {
            let inTransform = lowering.fusesPooling(pool, programs: kernel.programs, product: product,
                                                    biasInPlace: bias.map { access($0).isStrided } ?? true)
            pooling = ConvolutionPooling(parameters: pool, out: pooledOut, shape: pooledShape, inTransform: inTransform)
            if !inTransform {
                storage = Storage(allocatingByteCount: product.elementCount * MemoryLayout<Float>.stride)
                out = storage.baseAddress.assumingMemoryBound(to: Float.self)
            }
        }
        if lowering.implicit {
            runImplicitConv(kernel, product: product, lowering: lowering, X: X, W: W, bias: bias, into: out, storage: storage,
                            pooling: pooling)
            return
        }
        // Weights as [O, K] rows for the GEMM; packed once if their layout does not allow it.
        var wPacked: Storage?
        var wBase = W.base + W.offset
        var wLayout = GEMM.Layout(transposed: false, leadingDimension: Swift.max(1, k))
        if let l = lowering.weightLayout {
            wLayout = l
        } else {
            let block = Storage(allocatingByteCount: o * k * 4)
            let dst = block.baseAddress.assumingMemoryBound(to: Float.self)
            var e = 0, index = [0, 0, 0, 0]
            for a in 0..<ws[0] { for b in 0..<ws[1] { for c2 in 0..<ws[2] { for d in 0..<ws[3] {
                index = [a, b, c2, d]
                dst[e] = W.base[W.elementOffset(of: index)]
                e += 1
            } } } }
            Stats.recordCopy(bytes: o * k * 4, reason: .pack)
            wPacked = block
            wBase = UnsafePointer(dst)
        }
        let direct = lowering.direct
        if let chunk = lowering.imagesPerGEMM {
            let cols = Storage(allocatingByteCount: k * chunk * positions * 4)
            let product = Storage(allocatingByteCount: o * chunk * positions * 4)
            withExtendedLifetime((wPacked, cols, product)) {
                let colsBase = cols.baseAddress.assumingMemoryBound(to: Float.self)
                let productBase = product.baseAddress.assumingMemoryBound(to: Float.self)
                let shared = Unchecked((colsBase, productBase, out, X))
                for first in stride(from: 0, to: n, by: chunk) {
                    let count = Swift.min(chunk, n - first), width = count * positions
                    Parallel.forEach(items: count, work: count * k * positions) { range in
                        for b in range {
                            Executor.im2col(shared.value.3, image: first + b, channel0: 0, channels: cg, h: h, w: wd, kh: kh, kw: kw, p,
                                            ho: ho, wo: wo, into: shared.value.0 + b * positions, rowStride: width)
                        }
                    }
                    GEMM.gemm(m: o, n: width, k: k, a: wBase, wLayout, b: UnsafePointer(colsBase),
                              GEMM.Layout(transposed: false, leadingDimension: width), c: productBase, ldc: width)
                    Parallel.forEach(items: count, work: o * width) { range in
                        let (_, productBase, out, _) = shared.value
                        for b in range {
                            for channel in 0..<o {
                                (out + ((first + b) * o + channel) * positions)
                                    .update(from: productBase + channel * width + b * positions, count: positions)
                            }
                        }
                    }
                    Stats.recordCopy(bytes: k * width * 4, reason: .im2col)
                    Stats.recordCopy(bytes: o * width * 4, reason: .reorder)
                }
            }
        } else {
            // Several images: one image at a time per worker, each product whole on one thread
            // (splitting one product's columns made both workers pack the patch matrix's rows
            // and ran at one core's speed on this machine at times). One image: split inside.
            let workers = lowering.patchBuffers, perWorker = workers > 1
            let colsPerWorker = direct ? 0 : k * positions
            let cols = direct ? nil : Storage(allocatingByteCount: workers * colsPerWorker * 4)
            let shared = Unchecked((X, wBase, cols?.baseAddress.assumingMemoryBound(to: Float.self), out))
            let layout = wLayout
            withExtendedLifetime((wPacked, cols)) {
                let images = { @Sendable (range: Range<Int>, worker: Int) in
                    let (X, wBase, colsAll, out) = shared.value
                    // Rows of one group's weights start og rows down (og columns across, if transposed).
                    let weights = { (group: Int) in wBase + group * og * (layout.transposed ? 1 : layout.leadingDimension) }
                    for image in range {
                        for group in 0..<g {
                            let outBase = out + (image * o + group * og) * positions
                            if direct {
                                let xBase = X.base + X.offset + image * X.strides[0] + group * cg * X.strides[1]
                                GEMM.gemm(m: og, n: positions, k: k, a: weights(group), layout,
                                          b: xBase, GEMM.Layout(transposed: false, leadingDimension: X.strides[1]), c: outBase,
                                          ldc: positions, split: !perWorker)
                                continue
                            }
                            let colsBase = colsAll! + worker * colsPerWorker
                            Executor.im2col(X, image: image, channel0: group * cg, channels: cg, h: h, w: wd, kh: kh, kw: kw,
                                            p, ho: ho, wo: wo, into: colsBase, rowStride: positions)
                            GEMM.gemm(m: og, n: positions, k: k, a: weights(group), layout,
                                      b: UnsafePointer(colsBase), GEMM.Layout(transposed: false, leadingDimension: positions),
                                      c: outBase, ldc: positions, split: !perWorker)
                        }
                    }
                }
                if perWorker {
                    Parallel.run(workers) { w in images((n * w / workers)..<(n * (w + 1) / workers), w) }
                } else {
                    images(0..<n, 0)
                }
            }
            // Counted here: the workers run outside this task's Stats scope.
            if !direct { Stats.recordCopy(bytes: n * g * k * positions * 4, reason: .im2col) }
        }
        if let bias {
            let B = access(bias)
            for image in 0..<n {
                for channel in 0..<o {
                    var value = B.base[B.isStrided ? B.offset + channel * B.strides[0] : B.elementOffset(of: [channel])]
                    wk_binary(Int32(WK_ADD.rawValue), out + (image * o + channel) * positions, 1, &value, 0,
                              out + (image * o + channel) * positions, positions)
                }
            }
        }
        if let epilogue = kernel.programs.first {
            results[ObjectIdentifier(product)] = Node(.buffer(storage, offset: 0, strides: Tensor.contiguousStrides(for: os)),
                                                      [], shape: os)
            Executor.elementwise(epilogue, epilogue.leaves.map(access), into: out, strides: Tensor.contiguousStrides(for: os))
        }
        pooling?.poolAll(out, convShape: os)
    }

    /// The convolution through wk_conv_gemm. The bias is where each output piece starts; the
    /// epilogue runs on each piece on the worker that computed it, when its inputs are strided
    /// and their two spatial axes merge into one (otherwise over the whole output afterwards).
    mutating func runImplicitConv(_ kernel: Kernel, product: Node, lowering: ConvolutionLowering, X: LeafAccess, W: LeafAccess,
                                  bias: Program.Leaf?, into out: UnsafeMutablePointer<Float>, storage: Storage,
                                  pooling: ConvolutionPooling?) {
        guard case .conv2d = product.op, let ws = lowering.weightStrides else { return }
        let xs = X.strides, os = product.shape
        let shape = product.shape
        let (o, positions) = (shape[1], shape[2] * shape[3])
        let B = bias.map(access)
        let biasInPlace = B.map(\.isStrided) ?? false
        var d = lowering.shapeDescriptor
        d.x = X.base + X.offset
        (d.xn, d.xc, d.xh, d.xw) = (xs[0], xs[1], xs[2], xs[3])
        d.weights = W.base + W.offset
        (d.wrs, d.wcs) = (ws[0], ws[1])
        if let B, biasInPlace {
            d.bias = B.base + B.offset
            d.bias_stride = B.strides[0]
        }
        d.out = out
        let outStrides = Tensor.contiguousStrides(for: os)
        let workers = shape[0] * o * positions * lowering.k >= GEMM.splitThreshold ? Parallel.workers : 1
        if !kernel.programs.isEmpty {
            // The epilogue reads the product where it lies: in this kernel's output.
            results[ObjectIdentifier(product)] = Node(.buffer(storage, offset: 0, strides: outStrides), [], shape: os)
        }
        if let pooling, pooling.inTransform {
            // Winograd applies the ReLU and pools each tile as it leaves the transform: the
            // convolution's own output is never written, and `out` (the pooling's) goes unused.
            d.relu = kernel.programs.isEmpty ? 0 : 1
            d.pool_out = pooling.out
            Parallel.start()
            if wk_conv2d(&d, workers, nil, nil) != 0 { fatalError("wpack: out of memory: no scratch space for a convolution of \(os)") }
            return
        }
        if pooling == nil, lowering.fusesReLU(programs: kernel.programs, product: product, biasInPlace: biasInPlace || bias == nil) {
            d.relu = 1
            Parallel.start()
            if wk_conv2d(&d, workers, nil, nil) != 0 { fatalError("wpack: out of memory: no scratch space for a convolution of \(os)") }
            return
        }
        let epilogue = kernel.programs.first.map { ($0, $0.leaves.map(access)) }
        // The epilogue over [N, O, positions], so a piece is a box of it.
        let pieces: (Program, [LeafAccess])? = epilogue.flatMap { job in
            var (program, leaves) = job
            guard biasInPlace || bias == nil else { return nil }
            for i in leaves.indices {
                guard leaves[i].isStrided, let merged = Layout.reshapedStrides(
                    shape: [shape[2], shape[3]], strides: [leaves[i].strides[2], leaves[i].strides[3]], to: [positions]) else { return nil }
                leaves[i].strides = [leaves[i].strides[0], leaves[i].strides[1], merged[0]]
            }
            program.space = [shape[0], o, positions]
            return (program, leaves)
        }
        Parallel.start()
        // A piece is pooled as soon as it is final (nothing left to add after the GEMM) and is
        // whole images; the images it marks are skipped by the pooling at the end.
        let poolsPieces = pooling != nil && (biasInPlace || bias == nil) && (epilogue == nil || pieces != nil)
        let pooled = UnsafeMutableBufferPointer<Bool>.allocate(capacity: poolsPieces ? shape[0] : 0)
        pooled.initialize(repeating: false)
        defer { pooled.deallocate() }
        var piece: ConvPiece?
        if pieces != nil || poolsPieces {
            let shared = Unchecked((pieces, out, poolsPieces ? pooling : nil, pooled))
            piece = { images, channels, columns in
                let (job, out, pooling, pooled) = shared.value
                if var (program, leaves) = job {
                    program.space = [images.count, channels.count, columns.count]
                    for i in leaves.indices {
                        leaves[i].offset += images.lowerBound * leaves[i].strides[0] + channels.lowerBound * leaves[i].strides[1]
                            + columns.lowerBound * leaves[i].strides[2]
                    }
                    Executor.elementwise(program, leaves,
                                         into: out + (images.lowerBound * o + channels.lowerBound) * positions + columns.lowerBound,
                                         strides: [o * positions, positions, 1])
                }
                if let pooling, channels.count == o, columns.count == positions {
                    pooling.pool(out, convShape: os, images: images)
                    for image in images { pooled[image] = true }
                }
            }
        }
        let callback: wk_conv_tile_fn = { context, i0, i1, c0, c1, p0, p1 in
            context!.assumingMemoryBound(to: ConvPiece?.self).pointee!(Int(i0)..<Int(i1), Int(c0)..<Int(c1), Int(p0)..<Int(p1))
        }
        let hasPiece = piece != nil
        let status = withUnsafeMutablePointer(to: &piece) { context -> Int32 in
            wk_conv2d(&d, workers, hasPiece ? callback : nil, context)
        }
        if status != 0 { fatalError("wpack: out of memory: no scratch space for a convolution of \(os)") }
        if let B, !biasInPlace {
            for image in 0..<shape[0] {
                for channel in 0..<o {
                    var value = B.base[B.elementOffset(of: [channel])]
                    let row = out + (image * o + channel) * positions
                    wk_binary(Int32(WK_ADD.rawValue), row, 1, &value, 0, row, positions)
                }
            }
        }
        if pieces == nil, let (program, leaves) = epilogue {
            Executor.elementwise(program, leaves, into: out, strides: outStrides)
        }
        if let pooling {
            // What no piece pooled: everything, or the images that came in parts.
            if !pooled.contains(true) {
                pooling.poolAll(out, convShape: os)
            } else {
                for image in 0..<shape[0] where !pooled[image] { pooling.pool(out, convShape: os, images: image..<(image + 1)) }
            }
        }
    }

    /// One finished piece of a convolution's output: its images, channels and positions.
    typealias ConvPiece = @Sendable (Range<Int>, Range<Int>, Range<Int>) -> Void

    /// How a convolution is lowered onto GEMMs, decided from its shapes and its inputs' layouts:
    /// the run follows it, and a plan's cost accounting reads the buffers and copies it implies.
    struct ConvolutionLowering {
        /// The weights as BLAS rows in place, or nil: packed once into [O, K] (a `.pack` copy).
        let weightLayout: GEMM.Layout?
        /// A 1x1, stride 1 convolution reads the image in place: no patch matrix.
        let direct: Bool
        /// The patch matrix is packed panel by panel straight from the image inside the GEMM
        /// (wk_conv_gemm): no patch matrix in memory, no weight pack, bias and epilogue applied
        /// per finished piece. Taken when the image is strided, the weights merge into [O, K]
        /// strides and each group has at least 4 output channels (a depthwise convolution would
        /// use one row of an 8-row micro-kernel).
        let implicit: Bool
        /// Many small images (the digits CNN: 397 of 8x8): one GEMM per image is too small to
        /// split over the workers or to amortise the GEMM's packing, so chunks of this many
        /// images are lowered together, [K, images·positions], multiplied once and reordered
        /// into NCHW. nil: one image (and group) per GEMM.
        let imagesPerGEMM: Int?
        /// Patch matrices allocated side by side, one per worker, when images are split over them.
        let patchBuffers: Int
        /// The weights' strides as [O, K], when they merge.
        let weightStrides: [Int]?
        let k: Int, o: Int, n: Int, groups: Int, positions: Int
        let inputShape: [Int], kernel: (Int, Int)
        let parameters: Conv2DParameters, outShape: [Int]

        init(x xs: [Int], w ws: [Int], out os: [Int], _ p: Conv2DParameters, X: LeafAccess, W: LeafAccess) {
            (inputShape, kernel) = (xs, (ws[2], ws[3]))
            (parameters, outShape) = (p, os)
            let (n, wd) = (xs[0], xs[3])
            let (o, cg, kh, kw) = (ws[0], ws[1], ws[2], ws[3])
            let positions = os[2] * os[3], k = cg * kh * kw
            (self.k, self.o, self.n, groups, self.positions) = (k, o, n, p.groups, positions)
            if let merged = W.isStrided ? Layout.reshapedStrides(shape: ws, strides: W.strides, to: [o, k]) : nil {
                weightLayout = GEMM.layout(rows: o, cols: k, rowStride: merged[0], colStride: merged[1])
            } else {
                weightLayout = nil
            }
            direct = kh == 1 && kw == 1 && p.stride == (1, 1) && p.padding == (0, 0) && X.isStrided
                && X.strides[3] == 1 && X.strides[2] == wd && X.strides[1] >= positions
            weightStrides = W.isStrided ? Layout.reshapedStrides(shape: ws, strides: W.strides, to: [o, k]) : nil
            implicit = !direct && X.isStrided && weightStrides != nil && o / p.groups >= 4
            let perImage = o / p.groups * positions * k
            imagesPerGEMM = p.groups == 1 && !direct && !implicit && n > 1 && perImage < GEMM.splitThreshold
                ? Swift.max(1, Swift.min(n, (2 << 20) / Swift.max(1, 4 * k * positions))) : nil
            patchBuffers = n >= Parallel.workers && Parallel.workers > 1 ? Parallel.workers : 1
        }

        /// Bytes of every buffer the lowering allocates besides the output, in order.
        var allocations: [Int] {
            if implicit { return [] }
            var sizes: [Int] = weightLayout == nil ? [o * k * 4] : []
            if let chunk = imagesPerGEMM {
                sizes += [k * chunk * positions * 4, o * chunk * positions * 4]
            } else if !direct {
                sizes.append(patchBuffers * k * positions * 4)
            }
            return sizes
        }

        /// The description wk_conv2d reads, but for its pointers (a run fills those in).
        var shapeDescriptor: wk_conv_desc {
            var d = wk_conv_desc()
            let p = parameters
            (d.h, d.w, d.channels) = (inputShape[2], inputShape[3], k / (kernel.0 * kernel.1))
            (d.kh, d.kw) = kernel
            (d.sh, d.sw, d.ph, d.pw, d.dh, d.dw) = (p.stride.0, p.stride.1, p.padding.0, p.padding.1, p.dilation.0, p.dilation.1)
            (d.ho, d.wo) = (outShape[2], outShape[3])
            (d.images, d.groups, d.out_per_group) = (n, p.groups, o / p.groups)
            return d
        }

        /// How the convolution is computed, as explain() says it: the algorithm wk_conv2d takes
        /// on this thread, or the patch matrix the lowering fills.
        var method: String {
            if direct { return "1x1: the image read in place" }
            guard implicit else { return imagesPerGEMM.map { "patch matrix, \($0) images a GEMM" } ?? "patch matrix" }
            var d = shapeDescriptor
            switch Int(wk_conv_algorithm(&d)) {
            case WK_CONV_WINOGRAD: return wk_conv_winograd_tile(&d) == 4 ? "Winograd F(4x4, 3x3)" : "Winograd F(2x2, 3x3)"
            case WK_CONV_DIRECT: return "direct"
            default: return "implicit GEMM"
            }
        }

        /// Whether Winograd takes on a pooled convolution's epilogue and pooling itself (the
        /// digits CNN's pattern): it runs on this thread, the output's sides are multiples of 4,
        /// the bias is read in place, the epilogue is nothing or exactly relu(conv), and the pool
        /// 2x2, stride 2, max.
        func fusesPooling(_ p: Pool2DParameters, programs: [Program], product: Node, biasInPlace: Bool) -> Bool {
            guard implicit, biasInPlace, p.kind == .max, p.kernel == (2, 2), p.stride == (2, 2), p.padding == (0, 0) else { return false }
            if !programs.isEmpty { guard Self.isReLU(of: product, programs) else { return false } }
            var d = shapeDescriptor
            return wk_conv_algorithm(&d) == WK_CONV_WINOGRAD && wk_conv_winograd_pools(&d) != 0
        }

        /// Whether the direct kernel applies an unpooled convolution's epilogue itself: it runs
        /// on this thread, the bias is read in place and the epilogue is exactly relu(conv)
        /// (the digits CNN's first layer), so the output is rectified in registers, not in a
        /// second pass over it.
        func fusesReLU(programs: [Program], product: Node, biasInPlace: Bool) -> Bool {
            guard implicit, biasInPlace, Self.isReLU(of: product, programs) else { return false }
            var d = shapeDescriptor
            return wk_conv_algorithm(&d) == WK_CONV_DIRECT
        }

        /// An epilogue of one program that is relu(product) and nothing else.
        static func isReLU(of product: Node, _ programs: [Program]) -> Bool {
            guard programs.count == 1, let program = programs.first, program.instructions.count == 2, program.leaves.count == 1,
                  program.leaves[0].node === product, program.leaves[0].steps.isEmpty,
                  case .load(leaf: 0) = program.instructions[0], case .unary(.relu, 0) = program.instructions[1] else { return false }
            return true
        }

        /// Bytes it copies, by reason.
        var copies: [CopyReason: Int] {
            if implicit { return [:] }
            var c: [CopyReason: Int] = [:]
            if weightLayout == nil { c[.pack] = o * k * 4 }
            if imagesPerGEMM != nil {
                c[.im2col] = k * n * positions * 4
                c[.reorder] = o * n * positions * 4
            } else if !direct {
                c[.im2col] = n * groups * k * positions * 4
            }
            return c
        }
    }

    /// Fills the patch matrix [channels·kh·kw, ho·wo] of one image and channel group, its rows
    /// `rowStride` apart (wider than ho·wo when several images share one matrix); each row is
    /// one call of wk_im2col_row for a strided input.
    static func im2col(_ X: LeafAccess, image: Int, channel0: Int, channels: Int, h: Int, w: Int, kh: Int, kw: Int,
                       _ p: Conv2DParameters, ho: Int, wo: Int, into cols: UnsafeMutablePointer<Float>, rowStride: Int) {
        let positions = ho * wo
        let shared = Unchecked((X, cols))
        Parallel.forEach(items: channels, work: channels * kh * kw * positions) { range in
            let (X, cols) = shared.value
            for c in range {
                for ki in 0..<kh {
                    for kj in 0..<kw {
                        let row = cols + ((c * kh + ki) * kw + kj) * rowStride
                        let shiftH = ki * p.dilation.0 - p.padding.0, shiftW = kj * p.dilation.1 - p.padding.1
                        if X.isStrided {
                            let plane = X.base + X.offset + image * X.strides[0] + (channel0 + c) * X.strides[1]
                            wk_im2col_row(plane, X.strides[2], X.strides[3], h, w, row, ho, wo, p.stride.0, p.stride.1, shiftH, shiftW)
                            continue
                        }
                        for oi in 0..<ho {
                            let ih = oi * p.stride.0 + shiftH
                            for oj in 0..<wo {
                                let iw = oj * p.stride.1 + shiftW
                                row[oi * wo + oj] = ih >= 0 && ih < h && iw >= 0 && iw < w
                                    ? X.base[X.elementOffset(of: [image, channel0 + c, ih, iw])] : 0
                            }
                        }
                    }
                }
            }
        }
    }

    static func pool(_ X: LeafAccess, shape: [Int], _ p: Pool2DParameters, into out: UnsafeMutablePointer<Float>, outShape: [Int]) {
        let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
        let (ho, wo) = (outShape[2], outShape[3])
        let isMax = p.kind == .max
        let work = n * c * ho * wo * p.kernel.0 * p.kernel.1
        if X.isStrided {
            // The usual case: wk_pool2d_planes reads the planes through their four strides.
            let d = wk_pool_desc(x: X.base + X.offset, sn: X.strides[0], sc: X.strides[1], sh: X.strides[2], sw: X.strides[3],
                                 channels: c, h: h, w: w, ho: ho, wo: wo, kh: p.kernel.0, kw: p.kernel.1,
                                 stride_h: p.stride.0, stride_w: p.stride.1, pad_h: p.padding.0, pad_w: p.padding.1,
                                 is_max: isMax ? 1 : 0)
            let shared = Unchecked((d, out))
            Parallel.forEach(items: n * c, work: work) { range in
                var (d, out) = shared.value
                wk_pool2d_planes(&d, range.lowerBound, range.upperBound, out)
            }
            return
        }
        // Anything else goes through the general index map, one pixel at a time.
        let shared = Unchecked((X, out))
        let area = Float(p.kernel.0 * p.kernel.1)
        Parallel.forEach(items: n * c, work: work) { range in
            let (X, out) = shared.value
            var index = [0, 0, 0, 0]
            for plane in range {
                index[0] = plane / c
                index[1] = plane % c
                for oi in 0..<ho {
                    let ih0 = oi * p.stride.0 - p.padding.0
                    let ki0 = Swift.max(0, -ih0), ki1 = Swift.min(p.kernel.0, h - ih0)
                    for oj in 0..<wo {
                        let iw0 = oj * p.stride.1 - p.padding.1
                        let kj0 = Swift.max(0, -iw0), kj1 = Swift.min(p.kernel.1, w - iw0)
                        var best = -Float.infinity, sum: Float = 0, nan = false
                        for ki in ki0..<Swift.max(ki0, ki1) {
                            for kj in kj0..<Swift.max(kj0, kj1) {
                                index[2] = ih0 + ki
                                index[3] = iw0 + kj
                                let v = X.base[X.elementOffset(of: index)]
                                nan = nan || v.isNaN
                                best = Swift.max(best, v)
                                sum += v
                            }
                        }
                        out[(plane * ho + oi) * wo + oj] = isMax ? (nan ? .nan : best) : sum / area
                    }
                }
            }
        }
    }

}
