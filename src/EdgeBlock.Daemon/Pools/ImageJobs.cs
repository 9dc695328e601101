using System.Diagnostics;
using EdgeBlock.Daemon.Management;
using EdgeBlock.Images;
using EdgeBlock.Storage;
using EdgeBlock.Volumes;
using Microsoft.Extensions.Logging;
using Contract = EdgeBlock.Api.Pools;

namespace EdgeBlock.Daemon.Pools;

/// <summary>
/// Image imports and exports as background jobs of the daemon: the daemon opens the image file (the storage policy
/// decides which it may), a start answers once the job is checked and running, its status follows it, a cancel stops
/// it. An import creates its volume and writes only the image's data; one that fails or is cancelled removes the
/// volume again, an export its file. Imports and exports are not resumed after a restart (their records live as long
/// as the daemon). An attach creates a volume reading from the image at once (<see cref="Pool.AttachVolumeAsync"/>)
/// and runs its background copy as a job of kind attach, which the daemon resumes at start (the pool keeps where it
/// was) and stops only to delete the volume or to shut down.
/// </summary>
public sealed class ImageJobs
{
    private static readonly TimeSpan StopWait = TimeSpan.FromSeconds(30);

    /// <summary>The share of the drives' time an attach copy may use unless the request says otherwise: guests keep the rest.</summary>
    public const double DefaultAttachIoShare = 0.5;
    private const int KeptEnded = 100;
    /// <summary>
    /// Chunks an import reads, decompresses and writes at once (ImageCopy's workers): one chunk at a time left the
    /// drive idle while a chunk was read and the CPU idle while it was written (bench/images.sh).
    /// </summary>
    private const int ImportWorkers = 4;

    private readonly Func<string, Pool> _pools;
    private readonly string _dataDirectory;
    private readonly ILogger _logger;
    private readonly object _lock = new();
    private readonly Dictionary<string, Job> _jobs = new(StringComparer.Ordinal);
    private int _lastId;
    private bool _stopping;

    public ImageJobs(Func<string, Pool> pools, string dataDirectory, ILogger logger)
    {
        _pools = pools;
        _dataDirectory = dataDirectory;
        _logger = logger;
    }

    /// <summary>The storage policy's verdict on an image file (path, create), set by the management service; null: none (tests of pools alone).</summary>
    public Func<string, bool, PolicyRefusal?>? FilePolicy { get; set; }

    private sealed class Job(string id, string kind, string pool, string volume, string file, string format, string? compression)
    {
        public string Id { get; } = id;
        public string Kind { get; } = kind;
        public string Pool { get; } = pool;
        public string Volume { get; } = volume;
        public string File { get; } = file;
        public string Format { get; } = format;
        public string? Compression { get; } = compression;
        public DateTimeOffset Started { get; } = DateTimeOffset.UtcNow;
        public Stopwatch Clock { get; } = Stopwatch.StartNew();
        public CancellationTokenSource Cancel { get; } = new();
        public Task Run { get; set; } = Task.CompletedTask;
        public CopyProgress Progress;
        public long BaseDone = -1; // where a resumed attach copy began: its rate counts from there
        public DateTimeOffset? Ended;
        public string State = Contract.ImageJobStatus.Running;
        public string? Failure;
    }

    private sealed class Reporter(Job job) : IProgress<CopyProgress>
    {
        public void Report(CopyProgress value) => job.Progress = value;
    }

    /// <summary>Starts importing an image file into a new volume of a pool.</summary>
    public async Task<Contract.ImageJobStatus> StartImportAsync(string poolName, Contract.ImageImportRequest request)
    {
        Pool pool = _pools(poolName);
        string name = request.Name ?? "";
        string file = CheckFile(request.File, create: false, $"import into {poolName}/{name}");
        ImageReader image = Open(file);
        try
        {
            long size = VolumeSize(image, request.Size, $"{poolName}/{name}", file);
            long reserve = string.IsNullOrEmpty(request.Reserve) ? 0 : PoolManager.ParseSize(request.Reserve, $"volume {poolName}/{name}: reservation");
            await pool.CreateVolumeAsync(name, size, reserve, string.IsNullOrEmpty(request.Group) ? null : request.Group).ConfigureAwait(false);
            IBlockDevice volume;
            try
            {
                volume = pool.OpenVolume(name);
            }
            catch
            {
                await pool.DeleteVolumeAsync(name).ConfigureAwait(false);
                throw;
            }
            string? compression = image is Qcow2Reader q ? q.CompressionType.Name() : null;
            Job job = Register(Contract.ImageJobStatus.Import, pool.Name, name, file, image.Format.Name(), compression);
            job.Run = Task.Run(() => RunImportAsync(job, pool, image, volume));
            return Status(job);
        }
        catch
        {
            image.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Imports a raw image streamed in the request body (`image import -` reads stdin) into a new volume of the given
    /// size: a job like any import (`image jobs` follows it), run while the body arrives and answered when it is in
    /// and flushed. Only non-zero blocks are written (the volume stays thin); a stream longer than the size, a
    /// failure or a client that goes away removes the volume again.
    /// </summary>
    public async Task<Contract.ImageJobStatus> ImportStreamAsync(string poolName, string? name, string? size, string? group, string? reserve,
        Stream body, CancellationToken aborted)
    {
        Pool pool = _pools(poolName);
        name ??= "";
        if (string.IsNullOrEmpty(size))
            throw ManagementException.Invalid($"import into {poolName}/{name} from a stream: a size is needed (the stream's length is not known before it ends)");
        long bytes = PoolManager.ParseSize(size, $"volume {poolName}/{name}: size");
        long reserved = string.IsNullOrEmpty(reserve) ? 0 : PoolManager.ParseSize(reserve, $"volume {poolName}/{name}: reservation");
        await pool.CreateVolumeAsync(name, bytes, reserved, string.IsNullOrEmpty(group) ? null : group).ConfigureAwait(false);
        Job job;
        IBlockDevice volume;
        try
        {
            volume = pool.OpenVolume(name);
            job = Register(Contract.ImageJobStatus.Import, pool.Name, name, "-", ImageFormat.Raw.Name(), null);
        }
        catch
        {
            await pool.DeleteVolumeAsync(name).ConfigureAwait(false);
            throw;
        }
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(job.Cancel.Token, aborted);
        var run = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        job.Run = run.Task;
        bool done = false;
        try
        {
            job.Progress = new CopyProgress(0, bytes, 0);
            await CopyStreamAsync(job, body, volume, bytes, stop.Token).ConfigureAwait(false);
            done = true;
        }
        catch (Exception e)
        {
            Fail(job, e);
        }
        finally
        {
            await volume.DisposeAsync().ConfigureAwait(false);
        }
        if (!done) await DeleteUnfinishedAsync(job, pool).ConfigureAwait(false);
        End(job, done);
        run.SetResult();
        if (!done && job.Failure is { } failure) throw ManagementException.Invalid(failure);
        return Status(job);
    }

    /// <summary>Reads the stream in chunks and writes their non-zero blocks; the last partial block is padded with zeroes.</summary>
    private static async Task CopyStreamAsync(Job job, Stream body, IBlockDevice volume, long size, CancellationToken cancel)
    {
        byte[] buffer = GC.AllocateUninitializedArray<byte>(ImageCopy.ChunkBytes);
        long offset = 0, written = 0;
        while (true)
        {
            int n = await body.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, cancel).ConfigureAwait(false);
            if (n == 0) break;
            if (offset + n > size)
                throw new IOException($"import {job.Pool}/{job.Volume}: the stream holds more than the volume's size {Sizes.Format(size)} ({size} bytes)");
            int padded = (n + PoolLayout.BlockSize - 1) / PoolLayout.BlockSize * PoolLayout.BlockSize;
            buffer.AsSpan(n, padded - n).Clear();
            foreach ((int start, int length) in ImageCopy.NonZeroRuns(buffer.AsSpan(0, padded)))
            {
                Check(await volume.WriteAsync((offset + start) / PoolLayout.BlockSize, buffer.AsMemory(start, length), fua: false).ConfigureAwait(false), job);
                written += length;
            }
            offset += n;
            job.Progress = new CopyProgress(offset, size, written);
            if (n < buffer.Length) break; // the end of the stream
        }
        Check(await volume.FlushAsync().ConfigureAwait(false), job);
    }

    /// <summary>The size of a volume made from an image: the image's virtual size rounded up to a block, or what was asked (not less).</summary>
    private static long VolumeSize(ImageReader image, string? asked, string volume, string file)
    {
        if (string.IsNullOrEmpty(asked)) return (image.VirtualSize + PoolLayout.BlockSize - 1) / PoolLayout.BlockSize * PoolLayout.BlockSize;
        long size = PoolManager.ParseSize(asked, $"volume {volume}: size");
        if (size < image.VirtualSize)
            throw ManagementException.Invalid($"volume {volume}: size {Sizes.Format(size)} is smaller than the image's virtual size {Sizes.Format(image.VirtualSize)} ({file})");
        return size;
    }

    /// <summary>
    /// Attaches an image file as the origin of a new volume (usable when this returns) and starts its background copy.
    /// </summary>
    public async Task<VolumeInfo> AttachAsync(string poolName, Contract.ImageAttachRequest request)
    {
        Pool pool = _pools(poolName);
        string name = request.Name ?? "";
        string volume = $"{poolName}/{name}";
        double share = request.IoShare ?? DefaultAttachIoShare;
        if (!(share > 0 && share <= 1))
            throw ManagementException.Invalid($"attach to {volume}: io_share {share} must be above 0 and at most 1 (the share of the drives' time the copy may use; default {DefaultAttachIoShare})");
        string file = CheckFile(request.File, create: false, $"attach to {volume}");
        ImageReader image = Open(file);
        IVolumeOrigin origin;
        VolumeOriginRecord record;
        long size;
        try
        {
            size = VolumeSize(image, request.Size, volume, file);
            (origin, record) = ImageOrigin.Attach(image, _logger);
        }
        catch (Exception e)
        {
            image.Dispose();
            if (e is ImageException) throw ManagementException.Invalid(e.Message);
            throw;
        }
        string format = image.Format.Name();
        string? compression = image is Qcow2Reader q ? q.CompressionType.Name() : null;
        VolumeInfo info = await pool.AttachVolumeAsync(name, size, string.IsNullOrEmpty(request.Group) ? null : request.Group, origin, record).ConfigureAwait(false);
        StartCopy(pool, name, file, format, compression, share);
        return info;
    }

    /// <summary>At daemon start (or after a refused delete): resumes the copies of a pool's attached volumes (of one, when named).</summary>
    public void ResumeAttached(Pool pool, string? only = null)
    {
        foreach (string name in pool.AttachedVolumes().Where(v => only is null || v == only))
        {
            string file = pool.GetVolume(name).OriginCopy?.Path ?? "";
            string format;
            try
            {
                using var handle = File.OpenHandle(file);
                format = ImageFile.Probe(handle).Name();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                format = "unknown"; // the copy fails, naming why
            }
            try
            {
                StartCopy(pool, name, file, format, null, DefaultAttachIoShare);
            }
            catch (VolumeException e)
            {
                _logger.LogWarning("attach copy of {Pool}/{Volume}: {Message}", pool.Name, name, e.Message);
            }
        }
    }

    private void StartCopy(Pool pool, string volume, string file, string format, string? compression, double share)
    {
        Job job = Register(Contract.ImageJobStatus.Attach, pool.Name, volume, file, format, compression);
        job.Run = Task.Run(() => RunAttachAsync(job, pool, share));
    }

    private async Task RunAttachAsync(Job job, Pool pool, double share)
    {
        bool done = false;
        try
        {
            await pool.CopyOriginAsync(job.Volume, share, new AttachReporter(job), job.Cancel.Token).ConfigureAwait(false);
            done = true;
        }
        catch (Exception e)
        {
            Fail(job, e);
        }
        End(job, done);
    }

    private sealed class AttachReporter(Job job) : IProgress<OriginCopyProgress>
    {
        public void Report(OriginCopyProgress value)
        {
            if (job.BaseDone < 0) job.BaseDone = value.BytesCopied;
            job.Progress = new CopyProgress(value.BytesCopied, value.BytesTotal, value.BytesWritten);
        }
    }

    /// <summary>Stops the running copy of an attached volume (to delete it); true when one was running.</summary>
    public async Task<bool> StopAttachAsync(string pool, string volume)
    {
        Job? job;
        lock (_lock) job = _jobs.Values.FirstOrDefault(j => j.Kind == Contract.ImageJobStatus.Attach && j.Pool == pool && j.Volume == volume && !j.Run.IsCompleted);
        if (job is null) return false;
        await job.Cancel.CancelAsync().ConfigureAwait(false);
        if (await Task.WhenAny(job.Run, Task.Delay(StopWait)).ConfigureAwait(false) != job.Run)
            throw new VolumeException(VolumeError.Busy, $"volume {pool}/{volume}: its attach copy did not stop within {StopWait.TotalSeconds:0} s; try again");
        return true;
    }

    /// <summary>Starts exporting a volume or snapshot (NAME or NAME@SNAP) to a new image file.</summary>
    public Contract.ImageJobStatus StartExport(string poolName, Contract.ImageExportRequest request)
    {
        Pool pool = _pools(poolName);
        string name = request.Volume ?? "";
        string what = $"export of {poolName}/{name}";
        if (!ImageFormatNames.TryParse(request.Format ?? "", out ImageFormat format))
            throw ManagementException.Invalid($"{what}: format '{request.Format}' is unknown (qcow2 or raw)");
        var compression = Qcow2Compression.None;
        if (!string.IsNullOrEmpty(request.Compress) && !ImageFormatNames.TryParse(request.Compress, out compression))
            throw ManagementException.Invalid($"{what}: compression '{request.Compress}' is unknown (deflate or zstd)");
        if (compression != Qcow2Compression.None && format != ImageFormat.Qcow2)
            throw ManagementException.Invalid($"{what}: only qcow2 images are compressed (--format qcow2)");
        string file = CheckFile(request.File, create: true, what);
        pool.GetVolume(name); // 404 before a file is made
        IBlockDevice volume = pool.OpenSnapshotForReading(name);
        IImageWriter writer;
        try
        {
            writer = ImageWriters.Create(file, format, volume.BlockCount * volume.BlockSize, compression);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ImageException)
        {
            volume.DisposeAsync().AsTask().GetAwaiter().GetResult();
            throw ManagementException.Invalid($"{what}: cannot create {file}: {e.Message}");
        }
        Job job = Register(Contract.ImageJobStatus.Export, pool.Name, name, file, format.Name(), compression == Qcow2Compression.None ? null : compression.Name());
        job.Run = Task.Run(() => RunExportAsync(job, volume, writer));
        return Status(job);
    }

    private string CheckFile(string? path, bool create, string what)
    {
        if (string.IsNullOrEmpty(path)) throw ManagementException.Invalid($"{what}: an image file is needed");
        if (FilePolicy?.Invoke(path, create) is { } refusal)
            throw refusal.InUse ? ManagementException.Conflict(refusal.Message) : ManagementException.Invalid(refusal.Message);
        return StoragePolicy.RealPath(Path.GetFullPath(path, _dataDirectory));
    }

    private static ImageReader Open(string file)
    {
        try
        {
            // Backing files: only in the image's own directory (the one the user named), as qemu-img would resolve them.
            return ImageFile.Open(file);
        }
        catch (ImageException e)
        {
            throw ManagementException.Invalid(e.Message);
        }
    }

    private Job Register(string kind, string pool, string volume, string file, string format, string? compression)
    {
        lock (_lock)
        {
            if (_stopping) throw new VolumeException(VolumeError.Busy, $"the daemon is stopping; {kind} {pool}/{volume} after it restarts");
            var job = new Job((++_lastId).ToString(System.Globalization.CultureInfo.InvariantCulture), kind, pool, volume, file, format, compression);
            _jobs[job.Id] = job;
            // Ended jobs are kept for `image jobs`, the oldest dropped past a bound.
            foreach (Job old in _jobs.Values.Where(j => j.Run.IsCompleted && j != job).OrderBy(j => j.Started).SkipLast(KeptEnded).ToList())
                _jobs.Remove(old.Id);
            return job;
        }
    }

    private async Task RunImportAsync(Job job, Pool pool, ImageReader image, IBlockDevice volume)
    {
        byte[] tail = new byte[PoolLayout.BlockSize];
        bool done = false;
        try
        {
            await ImageCopy.CopyAsync(image, async (offset, data, _) =>
            {
                // Copies hand whole blocks; only an image whose size is no multiple of 4 KiB ends in a partial one
                // (one run at most, so the workers never share the tail buffer).
                if (data.Length % PoolLayout.BlockSize != 0)
                {
                    int whole = data.Length / PoolLayout.BlockSize * PoolLayout.BlockSize;
                    if (whole > 0) Check(await volume.WriteAsync(offset / PoolLayout.BlockSize, data[..whole], fua: false).ConfigureAwait(false), job);
                    Array.Clear(tail);
                    data[whole..].CopyTo(tail);
                    offset += whole;
                    data = tail;
                }
                Check(await volume.WriteAsync(offset / PoolLayout.BlockSize, data, fua: false).ConfigureAwait(false), job);
            }, new Reporter(job), job.Cancel.Token, ImportWorkers).ConfigureAwait(false);
            Check(await volume.FlushAsync().ConfigureAwait(false), job);
            done = true;
        }
        catch (Exception e)
        {
            Fail(job, e);
        }
        finally
        {
            await volume.DisposeAsync().ConfigureAwait(false);
            image.Dispose();
        }
        if (!done) await DeleteUnfinishedAsync(job, pool).ConfigureAwait(false);
        End(job, done);
    }

    private async Task DeleteUnfinishedAsync(Job job, Pool pool)
    {
        try
        {
            await pool.DeleteVolumeAsync(job.Volume).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            _logger.LogError(e, "import {Id}: could not remove the unfinished volume {Pool}/{Volume}: {Message}", job.Id, job.Pool, job.Volume, e.Message);
        }
    }

    private async Task RunExportAsync(Job job, IBlockDevice volume, IImageWriter writer)
    {
        bool done = false;
        try
        {
            long size = volume.BlockCount * volume.BlockSize, written = 0;
            byte[] buffer = GC.AllocateUninitializedArray<byte>(ImageCopy.ChunkBytes);
            job.Progress = new CopyProgress(0, size, 0);
            for (long offset = 0; offset < size; offset += ImageCopy.ChunkBytes)
            {
                job.Cancel.Token.ThrowIfCancellationRequested();
                int n = (int)Math.Min(ImageCopy.ChunkBytes, size - offset);
                Check(await volume.ReadAsync(offset / volume.BlockSize, buffer.AsMemory(0, n)).ConfigureAwait(false), job);
                foreach ((int start, int length) in ImageCopy.NonZeroRuns(buffer.AsSpan(0, n)))
                {
                    writer.Write(offset + start, buffer.AsSpan(start, length));
                    written += length;
                }
                job.Progress = new CopyProgress(offset + n, size, written);
            }
            writer.Complete();
            done = true;
        }
        catch (Exception e)
        {
            Fail(job, e);
        }
        finally
        {
            writer.Dispose();
            await volume.DisposeAsync().ConfigureAwait(false);
        }
        if (!done)
        {
            try
            {
                File.Delete(job.File);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                _logger.LogError("export {Id}: could not remove the unfinished file {File}: {Message}", job.Id, job.File, e.Message);
            }
        }
        End(job, done);
    }

    private static void Check(BlockStatus status, Job job)
    {
        if (status != BlockStatus.Success) throw new IOException($"{job.Kind} {job.Pool}/{job.Volume}: the volume answered {status}");
    }

    private void Fail(Job job, Exception e)
    {
        if (e is OperationCanceledException && job.Cancel.IsCancellationRequested)
        {
            job.State = Contract.ImageJobStatus.Cancelled;
            return;
        }
        job.Failure = e.Message;
        _logger.LogError(e, "{Kind} {Id} of {Pool}/{Volume} ({File}) failed: {Message}", job.Kind, job.Id, job.Pool, job.Volume, job.File, e.Message);
    }

    private void End(Job job, bool done)
    {
        job.Ended = DateTimeOffset.UtcNow;
        job.Clock.Stop();
        job.State = done ? Contract.ImageJobStatus.Finished : job.Failure != null ? Contract.ImageJobStatus.Failed : Contract.ImageJobStatus.Cancelled;
        _logger.LogInformation("{Kind} {Id} of {Pool}/{Volume} ({File}): {State}, {Bytes} bytes written in {Seconds:0.0} s",
            job.Kind, job.Id, job.Pool, job.Volume, job.File, job.State, job.Progress.BytesWritten, job.Clock.Elapsed.TotalSeconds);
    }

    public Contract.ImageJobStatus Status(string id) => Status(Find(id));

    /// <summary>The longest a status request may wait for its job to end.</summary>
    public static readonly TimeSpan MaxStatusWait = TimeSpan.FromSeconds(10);

    /// <summary>
    /// The job's status once it has ended, or after <paramref name="wait"/> seconds (a decimal number, 0 to 10) if it
    /// still runs: a follower learns of the end at once instead of at its next poll.
    /// </summary>
    public async Task<Contract.ImageJobStatus> StatusAsync(string id, string? wait)
    {
        Job job = Find(id);
        if (string.IsNullOrEmpty(wait)) return Status(job);
        if (!double.TryParse(wait, System.Globalization.NumberStyles.AllowDecimalPoint, System.Globalization.CultureInfo.InvariantCulture, out double seconds)
            || !(seconds <= MaxStatusWait.TotalSeconds)) // NaN too
            throw ManagementException.Invalid($"image job {id}: wait '{wait}' is not a number of seconds from 0 to {MaxStatusWait.TotalSeconds}");
        if (job.Run is { IsCompleted: false } run)
            await Task.WhenAny(run, Task.Delay(TimeSpan.FromSeconds(seconds))).ConfigureAwait(false);
        return Status(job);
    }

    public IReadOnlyList<Contract.ImageJobStatus> List()
    {
        lock (_lock) return _jobs.Values.OrderBy(j => j.Started).Select(Status).ToList();
    }

    /// <summary>Cancels a running job and answers its status once it stopped; 409 when it is not running.</summary>
    public async Task<Contract.ImageJobStatus> CancelAsync(string id)
    {
        Job job = Find(id);
        if (job.Run.IsCompleted) throw ManagementException.Conflict($"image job {id} is not running ({job.State})");
        if (job.Kind == Contract.ImageJobStatus.Attach)
            throw ManagementException.Conflict($"image job {id} copies the image attached to {job.Pool}/{job.Volume}, which reads from it until the copy is done: it is not cancelled (delete the volume to abandon it)");
        await job.Cancel.CancelAsync().ConfigureAwait(false);
        if (await Task.WhenAny(job.Run, Task.Delay(StopWait)).ConfigureAwait(false) != job.Run)
            throw new ManagementException(409, "busy", $"image job {id} did not stop within {StopWait.TotalSeconds:0} s; it stops after the read or write under way");
        return Status(job);
    }

    /// <summary>At shutdown, before the pools close: cancels running jobs (an import removes its volume).</summary>
    public async Task StopAllAsync()
    {
        List<Job> running = StopAccepting();
        foreach (Job job in running) await job.Cancel.CancelAsync().ConfigureAwait(false);
        Task all = Task.WhenAll(running.Select(j => j.Run)); // the runs catch their own failures
        if (await Task.WhenAny(all, Task.Delay(StopWait)).ConfigureAwait(false) != all)
            _logger.LogWarning("an image job did not stop within {Seconds} s; closing its pool anyway", StopWait.TotalSeconds);
    }

    /// <summary>Refuses new jobs from now on; answers the running ones.</summary>
    private List<Job> StopAccepting()
    {
        lock (_lock)
        {
            _stopping = true;
            return [.. _jobs.Values.Where(j => !j.Run.IsCompleted)];
        }
    }

    private Job Find(string id)
    {
        lock (_lock)
            return _jobs.TryGetValue(id, out Job? job) ? job : throw ManagementException.NotFound($"image job {id} does not exist (see `edgeblock image jobs`)");
    }

    private static Contract.ImageJobStatus Status(Job job)
    {
        CopyProgress p = job.Progress;
        double seconds = job.Clock.Elapsed.TotalSeconds;
        double? rate = seconds > 0 ? Math.Round((p.BytesDone - Math.Max(0, job.BaseDone)) / seconds) : null;
        double? eta = job.State == Contract.ImageJobStatus.Running && rate is > 0 ? Math.Round((p.BytesTotal - p.BytesDone) / rate.Value, 1) : null;
        return new Contract.ImageJobStatus(job.Id, job.Kind, job.State, job.Pool, job.Volume, job.File, job.Format, job.Compression,
            p.BytesDone, p.BytesTotal, p.BytesWritten, rate, eta, job.Started, job.Ended, job.Failure);
    }
}
