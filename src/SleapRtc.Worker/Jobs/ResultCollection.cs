using System.Text.Json;
using SleapRtc.Protocol.Jobs;
using SleapRtc.Protocol.Logging;
using SleapRtc.WebRtc;

namespace SleapRtc.Worker.Jobs;

/// <summary>How a collection on the worker ended.</summary>
public enum CollectionEnd
{
    /// <summary>Every kept file was sent and the client confirmed it: the results were deleted.</summary>
    Delivered,
    /// <summary>Every file was sent but delivery could not be confirmed: the results stay.</summary>
    Sent,
    /// <summary>No kept results for that job id (job_not_found).</summary>
    NotFound,
    /// <summary>The client said nothing usable, or left.</summary>
    Abandoned,
}

/// <summary>
/// Serves one result collection (issue 12) on a data channel offered with purpose "collect": the client says
/// SLEAPRTC_HELLO with mode "collect" and its job id, the worker answers WELCOME, sends the job's kept files exactly
/// as results go out at the end of a job (FILE_META, chunks, SHA-256, END_OF_FILE) and then SLEAPRTC_COLLECTED.
/// Results a client confirmed (it echoes SLEAPRTC_COLLECTED once it has every file) are deleted; an unknown or
/// expired job id is answered SLEAPRTC_ERROR job_not_found. Runs beside a training job: it never touches the status.
/// </summary>
public sealed class ResultCollection
{
    private readonly IDataChannel _channel;
    private readonly JobResultStore _store;
    private readonly WorkerJobOptions _options;
    private readonly ILogSink _log;
    private readonly FrameWriter _writer;
    private readonly TaskCompletionSource<JobExtensions.Handshake?> _hello = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<bool> _confirmed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile bool _closedCleanly;

    /// <summary>Starts listening at once (the client's hello may arrive before <see cref="RunAsync"/>).</summary>
    public ResultCollection(IDataChannel channel, JobResultStore store, WorkerJobOptions options, ILogSink? log = null)
    {
        _channel = channel;
        _store = store;
        _options = options;
        _log = log ?? Log.Null;
        _writer = ChannelDelivery.WriterFor(channel, options.HighWaterMark);
        _channel.MessageReceived += OnMessage;
        _channel.Closed += OnClosed;
    }

    public string? JobId { get; private set; }

    public async Task<CollectionEnd> RunAsync(TimeSpan helloTimeout, CancellationToken cancellationToken)
    {
        try
        {
            JobExtensions.Handshake? hello;
            try { hello = await _hello.Task.WaitAsync(helloTimeout, cancellationToken).ConfigureAwait(false); }
            catch (Exception e) when (e is TimeoutException or OperationCanceledException) { return CollectionEnd.Abandoned; }
            if (hello is null) return CollectionEnd.Abandoned;
            JobId = hello.JobId;
            _writer.SendText(JobExtensions.WelcomeMessage(JobId ?? ""));
            if (hello.Mode != JobExtensions.Handshake.ModeCollect || string.IsNullOrEmpty(JobId)
                || !_store.TryOpen(JobId!, out var results, out var folder, out var lease))
            {
                _writer.TrySendText(JobExtensions.ErrorMessage(JobErrorCodes.JobNotFound, hello.Mode != JobExtensions.Handshake.ModeCollect || string.IsNullOrEmpty(JobId)
                    ? "A collect connection must say hello with mode \"collect\" and the job id."
                    : $"This worker holds no results for job {JobId}: it never ran here, its results were collected already, or they expired."));
                await ChannelDelivery.WaitForCleanCloseAsync(_channel, _options.ResultsDrainTimeout, () => _closedCleanly, cancellationToken).ConfigureAwait(false);
                return CollectionEnd.NotFound;
            }

            bool delivered;
            using (lease)
            {
                foreach (var file in results!.Files)
                {
                    var path = Path.Combine(folder!, file);
                    var startAt = ResumePoint(hello, file, path, cancellationToken);
                    _log.Write(LogLevel.Information, "worker", $"collect {JobId}: sending {file}" + (startAt > 0 ? $" from byte {startAt} (the collector holds the rest)" : ""));
                    await ChannelDelivery.SendFileAsync(_channel, _writer, path, file, "models",
                        _options.ChunkSize, announceSha256: true, cancellationToken, startAt).ConfigureAwait(false);
                }
                var collected = new Dictionary<string, object> { ["job_id"] = JobId!, ["state"] = results.State, ["files"] = results.Files.Length };
                _writer.SendText(JobMessages.Format(JobMessages.Collected, JsonSerializer.Serialize(collected)));
                // Our collector echoes SLEAPRTC_COLLECTED once every file is on its disk and checked: only then are the results deleted.
                delivered = await _confirmed.Task.WaitAsync(_options.ResultsDrainTimeout, cancellationToken).ConfigureAwait(false);
            }
            if (!delivered) return CollectionEnd.Sent;
            _store.Remove(JobId!);
            return CollectionEnd.Delivered;
        }
        catch (Exception e) when (e is InvalidOperationException or IOException or ObjectDisposedException && _channel.State != DataChannelState.Open)
        {
            return CollectionEnd.Abandoned;
        }
        catch (TimeoutException)
        {
            return CollectionEnd.Sent;
        }
        finally
        {
            _channel.MessageReceived -= OnMessage;
            _channel.Closed -= OnClosed;
        }
    }

    /// <summary>
    /// Issue 16: a collector that holds the start of a file (cut off before) names it in its hello; when those bytes are this
    /// file's (same size, same prefix SHA-256) only the rest is sent, else the whole file.
    /// </summary>
    private static long ResumePoint(JobExtensions.Handshake hello, string file, string path, CancellationToken cancellationToken)
    {
        if (hello.Partials?.FirstOrDefault(p => p.Name == file) is not { Offset: > 0 } held) return 0;
        var size = new FileInfo(path).Length;
        return held.Size == size && held.Offset <= size && TransferResume.PrefixMatches(path, held, cancellationToken) ? held.Offset : 0;
    }

    private void OnMessage(DataChannelMessage message)
    {
        if (!message.IsText) return;
        var (type, args) = JobMessages.Parse(message.Text!);
        if (type == JobMessages.Hello) _hello.TrySetResult(JobExtensions.ParseHandshake(args.FirstOrDefault() ?? ""));
        else if (type == JobMessages.Collected) _confirmed.TrySetResult(true);
    }

    private void OnClosed(Exception? error)
    {
        _closedCleanly = error is null;
        _hello.TrySetResult(null);
        _confirmed.TrySetResult(false);
    }
}
