using System.Security.Cryptography;

namespace SleapRtc.Protocol.Jobs;

/// <summary>
/// Sends one binary frame and completes when the transport can take more (back-pressure). The frame's
/// memory may be reused once the returned task completes.
/// </summary>
public delegate ValueTask BinaryFrameSender(ReadOnlyMemory<byte> frame, CancellationToken cancellationToken);

/// <summary>
/// Streams a file the classic way: FILE_META, binary chunks, END_OF_FILE; with the extensions, the
/// SHA-256 of the bytes is announced just before END_OF_FILE. Transport-agnostic so worker and client share it.
/// </summary>
public static class FileSender
{
    /// <summary>Classic clients send 64 KiB chunks (aiortc's max-message-size).</summary>
    public const int DefaultChunkSize = 64 * 1024;

    /// <param name="startAt">A resumed transfer: the receiver holds this many bytes already (its prefix was checked);
    /// they are hashed but not sent, and SLEAPRTC_TRANSFER_FROM goes out before FILE_META. <paramref name="bytesSent"/>
    /// counts from the start of the file.</param>
    /// <returns>The SHA-256 (lower-case hex) of the whole file.</returns>
    public static async Task<string> SendAsync(
        Stream source, FileMetaInfo meta, Action<string> sendText, BinaryFrameSender sendBinary,
        int chunkSize, bool announceSha256, IProgress<long>? bytesSent, CancellationToken cancellationToken, long startAt = 0)
    {
        if (chunkSize <= 0) throw new ArgumentOutOfRangeException(nameof(chunkSize));
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        if (startAt > 0)
        {
            if (!TransferResume.HashPrefix(source, startAt, new[] { hash }, cancellationToken))
                throw new IOException($"'{meta.Name}' is shorter than the {startAt} bytes the receiver holds.");
            sendText(JobMessages.Format(JobMessages.TransferFrom, startAt.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        }
        sendText(meta.ToMessage());
        long total = startAt;
        var buffer = new byte[chunkSize];
        while (true)
        {
            var read = await ReadFullAsync(source, buffer, cancellationToken).ConfigureAwait(false);
            if (read == 0) break;
            hash.AppendData(buffer, 0, read);
            await sendBinary(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
            total += read;
            bytesSent?.Report(total);
        }
        var digest = Convert.ToHexString(hash.GetHashAndReset()).ToLowerInvariant();
        if (announceSha256) sendText(JobMessages.Format(JobMessages.Sha256, digest));
        sendText(JobMessages.EndOfFile);
        return digest;
    }

    private static async Task<int> ReadFullAsync(Stream source, byte[] buffer, CancellationToken cancellationToken)
    {
        var filled = 0;
        while (filled < buffer.Length)
        {
            var n = await source.ReadAsync(buffer.AsMemory(filled), cancellationToken).ConfigureAwait(false);
            if (n == 0) break;
            filled += n;
        }
        return filled;
    }
}

/// <summary>The checksum announced for a file did not match the bytes received.</summary>
public sealed class FileChecksumException : Exception
{
    public FileChecksumException(string fileName, string expected, string actual)
        : base($"The SHA-256 of '{fileName}' does not match: expected {expected}, received {actual}. The transfer was corrupted; send it again.")
    {
        FileName = fileName;
    }

    public string FileName { get; }
}

/// <summary>
/// Receives one file into a path on disk as its chunks arrive, hashing as it goes. Chunks are copied into a
/// small bounded queue that a dedicated thread writes and hashes, so the transport's receive thread only
/// copies (on a 2-core box, disk and SHA-256 work on that thread would slow the whole transfer). Memory stays
/// flat whatever the size: when the queue is full, <see cref="Write"/> waits, which back-pressures the sender.
/// Not thread-safe: the data channel raises messages in order on one thread.
/// </summary>
public sealed class FileReceiver : IDisposable
{
    private const int QueuedChunks = 64;
    private readonly FileStream _stream;
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private readonly System.Collections.Concurrent.BlockingCollection<(byte[] Buffer, int Length)> _queue = new(QueuedChunks);
    private readonly Thread _writer;
    private Exception? _writeError;
    private string? _expectedSha256;
    private bool _finished;

    /// <param name="splitter">A zip package: its large stored entries are written straight to their files while they
    /// arrive (see <see cref="ZipEntrySplitter"/>); null writes every byte to <paramref name="path"/>.</param>
    public FileReceiver(FileMetaInfo meta, string path, ZipEntrySplitter? splitter = null)
    {
        Meta = meta;
        Path = path;
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!);
        _stream = new FileStream(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.SequentialScan);
        _splitter = splitter;
        _splitter?.WriteTo(_stream);
        _writer = new Thread(WriteLoop) { IsBackground = true, Name = "sleaprtc-file-receiver" };
        _writer.Start();
    }

    private FileReceiver(FileMetaInfo meta, string path, FileStream stream, long offset, string? prefixSha256, ZipEntrySplitter? splitter)
    {
        Meta = meta;
        Path = path;
        _stream = stream;
        _splitter = splitter;
        BytesReceived = offset;
        PrefixSha256 = prefixSha256;
        _writer = new Thread(WriteLoop) { IsBackground = true, Name = "sleaprtc-file-receiver" };
        _writer.Start();
    }

    private readonly ZipEntrySplitter? _splitter;

    /// <summary>Entries of a zip package already written to their own files (see <see cref="ZipEntrySplitter"/>); complete once
    /// the receiver is done with its queue (after <see cref="Complete"/> or <see cref="Park"/>).</summary>
    public IReadOnlyList<ZipEntrySplitter.SplitEntry> SplitEntries => _splitter?.Entries ?? Array.Empty<ZipEntrySplitter.SplitEntry>();

    /// <summary>
    /// Continues a partial file a cut-off transfer left (see <see cref="Park"/>): its first <paramref name="offset"/> bytes
    /// are kept (anything after them dropped) and hashed, so the end still checks the whole file's SHA-256;
    /// <see cref="PrefixSha256"/> is what the sender compares with its own file before sending the rest.
    /// </summary>
    /// <exception cref="IOException">The partial file is missing or shorter than <paramref name="offset"/>.</exception>
    /// <param name="splitter">For a zip package received with a <see cref="ZipEntrySplitter"/>: a new one, which replays the
    /// kept bytes (the split entries' bytes read back from their files) to stand where the earlier one stopped.</param>
    /// <param name="splitEntries">What the earlier splitter wrote to files of their own.</param>
    public static FileReceiver Resume(FileMetaInfo meta, string path, long offset, CancellationToken cancellationToken = default,
        ZipEntrySplitter? splitter = null, IReadOnlyList<ZipEntrySplitter.SplitEntry>? splitEntries = null)
    {
        var stream = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.SequentialScan);
        var prefix = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        FileReceiver? receiver = null;
        try
        {
            if (offset < 0 || offset > meta.Size || stream.Length < offset)
                throw new IOException($"The partial '{meta.Name}' holds {stream.Length} bytes, not the {offset} expected.");
            receiver = new FileReceiver(meta, path, stream, offset, null, splitter);
            // One pass feeds both the hash that goes on with the rest of the file and the prefix's own.
            var hash = receiver._hash;
            if (splitter is not null)
                splitter.Replay(stream, offset, splitEntries ?? Array.Empty<ZipEntrySplitter.SplitEntry>(), (b, o, n) =>
                {
                    hash.AppendData(b, o, n);
                    prefix.AppendData(b, o, n);
                }, cancellationToken);
            else if (!TransferResume.HashPrefix(stream, offset, new[] { hash, prefix }, cancellationToken))
                throw new IOException($"The partial '{meta.Name}' ended before byte {offset}.");
            receiver.PrefixSha256 = offset > 0 ? TransferResume.Hex(prefix.GetHashAndReset()) : null;
            stream.SetLength(offset);
            stream.Position = offset;
            return receiver;
        }
        catch
        {
            if (receiver is not null) receiver.Dispose();
            else stream.Dispose();
            throw;
        }
        finally
        {
            prefix.Dispose();
        }
    }

    /// <summary>Resumed receivers: the SHA-256 of the bytes held before this connection (null from byte 0).</summary>
    public string? PrefixSha256 { get; private set; }

    /// <summary>Where this file stands, for SLEAPRTC_TRANSFER_AT.</summary>
    public TransferPoint Point => new() { Name = Meta.Name, Size = Meta.Size, Offset = BytesReceived, PrefixSha256 = PrefixSha256 };

    /// <summary>
    /// The connection was lost mid-file: writes what arrived, closes the file and keeps it for <see cref="Resume"/>.
    /// </summary>
    /// <returns>How many bytes the file holds (what the receiver confirms when the transfer resumes).</returns>
    public long Park()
    {
        _finished = true;
        DrainWriter();
        if (_writeError is not null)
        {
            _stream.Dispose();
            TryDelete();
            return 0;
        }
        _splitter?.Flush();
        _stream.Flush();
        var held = _splitter?.Position ?? _stream.Length;
        _splitter?.Dispose();
        _stream.Dispose();
        return held;
    }

    public FileMetaInfo Meta { get; }
    public string Path { get; }
    public long BytesReceived { get; private set; }
    public string? Sha256 { get; private set; }

    /// <exception cref="IOException">Writing an earlier chunk failed (disk full, ...).</exception>
    public void Write(ReadOnlySpan<byte> chunk)
    {
        if (_finished) throw new InvalidOperationException("The file is already complete.");
        if (_writeError is { } error) throw new IOException("Writing the received file failed: " + error.Message, error);
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(chunk.Length);
        chunk.CopyTo(buffer);
        _queue.Add((buffer, chunk.Length));
        BytesReceived += chunk.Length;
    }

    public void ExpectSha256(string hex) => _expectedSha256 = hex.Trim().ToLowerInvariant();

    /// <summary>Waits for the queued chunks, closes the file and checks the announced checksum (deleting the file on a mismatch).</summary>
    public void Complete()
    {
        _finished = true;
        DrainWriter();
        if (_writeError is { } error)
        {
            TryDelete();
            throw new IOException("Writing the received file failed: " + error.Message, error);
        }
        _splitter?.Flush();
        _splitter?.Dispose();
        _stream.Flush();
        _stream.Dispose();
        Sha256 = Convert.ToHexString(_hash.GetHashAndReset()).ToLowerInvariant();
        if (_expectedSha256 is not null && _expectedSha256 != Sha256)
        {
            TryDelete();
            throw new FileChecksumException(Meta.Name, _expectedSha256, Sha256);
        }
    }

    /// <summary>Stops receiving and removes the partial file.</summary>
    public void Abort()
    {
        _finished = true;
        DrainWriter();
        _stream.Dispose();
        TryDelete();
        _splitter?.Dispose();
        foreach (var entry in SplitEntries)
            try { File.Delete(entry.Path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    public void Dispose()
    {
        _finished = true;
        DrainWriter();
        _splitter?.Dispose();
        _stream.Dispose();
        _hash.Dispose();
        _queue.Dispose();
    }

    private void DrainWriter()
    {
        if (!_queue.IsAddingCompleted) _queue.CompleteAdding();
        _writer.Join();
    }

    private void WriteLoop()
    {
        foreach (var (buffer, length) in _queue.GetConsumingEnumerable())
        {
            try
            {
                if (_writeError is null)
                {
                    if (_splitter is null) _stream.Write(buffer, 0, length);
                    else _splitter.Write(buffer, 0, length);
                    _hash.AppendData(buffer, 0, length);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                _writeError = e;
            }
            finally
            {
                System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
            }
        }
    }

    private void TryDelete()
    {
        try { File.Delete(Path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
