using SleapRtc.Protocol.Jobs;
using SleapRtc.Protocol.Logging;
using SleapRtc.Protocol.Signaling;
using SleapRtc.Signaling.Client;
using SleapRtc.Worker.Jobs;

namespace SleapRtc.Worker;

// Resumable uploads (issue 16): a package upload cut off mid-file is kept for a while and the worker stays reserved
// for that job, so its client can come back over a new connection (offer purpose "resume") and send only the rest.
public sealed partial class WorkerHost
{
    /// <summary>How long a resume offer waits for a still-running upload session to hand over its partial package.</summary>
    private static readonly TimeSpan TakeOverWait = TimeSpan.FromSeconds(5);

    private ParkedUpload? _parkedUpload;
    private Timer? _parkedUploadExpiry;
    private TaskCompletionSource<bool> _uploadParked = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private static bool IsResumeOffer(SdpMessage offer) => offer.Raw.GetString(JobQueueMessages.OfferPurposeKey) == JobQueueMessages.ResumePurpose;

    /// <summary>True while a partial upload waits for its client: the worker stays reserved for it.</summary>
    private bool HoldsParkedUpload { get { lock (_gate) return _parkedUpload is not null; } }

    /// <summary>A session kept its client's partial upload: hold it (and the reservation) for the retention time.</summary>
    private void ParkUpload(ParkedUpload parked)
    {
        ParkedUpload? replaced;
        TaskCompletionSource<bool> signal;
        lock (_gate)
        {
            replaced = _parkedUpload;
            _parkedUpload = parked;
            _parkedUploadExpiry?.Dispose();
            _parkedUploadExpiry = new Timer(_ => _ = Task.Run(() => ExpireParkedUploadAsync(parked)), null, _options.PartialUploadRetention, Timeout.InfiniteTimeSpan);
            signal = _uploadParked;
        }
        replaced?.Discard();
        Note($"Job {parked.JobId}: {parked.Bytes} of {parked.Meta.Size} bytes of {parked.Meta.Name} kept {_options.PartialUploadRetention.TotalMinutes:0.#} min for the client to resume");
        signal.TrySetResult(true);
    }

    /// <summary>A resume hello from <paramref name="client"/>: the kept upload when it is that job's and that file's and
    /// <paramref name="client"/> sent it (the caller owns it from now).</summary>
    private ParkedUpload? ClaimParkedUpload(string client, string jobId, TransferPoint upload)
    {
        lock (_gate)
        {
            if (_parkedUpload is not { } parked || !parked.Matches(jobId, upload)) return null;
            if (parked.BelongsTo(client))
            {
                _parkedUpload = null;
                _parkedUploadExpiry?.Dispose();
                _parkedUploadExpiry = null;
                _uploadParked = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
                return parked;
            }
        }
        // The offer check (HandleResumeOfferAsync) normally stops such a client first; the kept upload stays for its owner.
        Warn($"Refused client {client} the kept upload of job {jobId}: another client sent it");
        return null;
    }

    private async Task ExpireParkedUploadAsync(ParkedUpload parked)
    {
        lock (_gate)
        {
            if (_parkedUpload != parked) return; // claimed meanwhile
            _parkedUpload = null;
            _parkedUploadExpiry?.Dispose();
            _parkedUploadExpiry = null;
            _uploadParked = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        parked.Discard();
        Note($"Job {parked.JobId}: its client did not come back within {_options.PartialUploadRetention.TotalMinutes:0.#} min; the partial upload was removed");
        var record = parked.Record.Clone();
        record.State = JobStates.Failed;
        record.Error = "The upload was cut off and its client did not resume it in time";
        record.FinishedAt = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        _reporter.ReportState(record);
        bool idle;
        lock (_gate) idle = _session is null;
        if (idle) await ClearJobAndBecomeAvailableAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// An offer with purpose "resume": served only while this worker keeps a partial upload, or while an upload session
    /// that can resume still runs (its client, back on a new connection, is gone from the old one: the old session hands
    /// its partial over first), and only when the offer comes from the client that sent that upload. The sender is
    /// what our server set from the sender's own connection (a peer id is bound to its holder's id_token), while a job
    /// id is visible to the whole room: without this check any member could cut off someone's upload or send its own
    /// bytes under their job. Anything else is refused as busy.
    /// </summary>
    private async Task HandleResumeOfferAsync(SdpMessage offer)
    {
        if (_stopping.IsCancellationRequested) return;
        WorkerJobSession? running;
        ParkedUpload? parked;
        Task previous;
        Task<bool> parkedSignal;
        lock (_gate) { running = _session; parked = _parkedUpload; previous = _currentJob; parkedSignal = _uploadParked.Task; }
        var uploading = running?.IsReceivingResumableUpload == true ? running : null;
        if ((parked is not null || uploading is not null)
            && !string.Equals(parked is not null ? parked.ClientPeerId : uploading!.ClientPeerId, offer.Sender, StringComparison.Ordinal))
        {
            string reservedAs;
            lock (_gate) reservedAs = _status;
            Warn($"Refused a resume from {offer.Sender}: the upload of job {parked?.JobId ?? uploading!.JobId} belongs to another client");
            await _signaling.SendBusyRejectionAsync(offer.Sender, reservedAs, _stopping.Token).ConfigureAwait(false);
            return;
        }
        if (!HoldsParkedUpload && running?.IsReceivingResumableUpload == true)
        {
            Note($"Client {offer.Sender} resumes an upload; the connection it left is closed");
            running.PeerLost();
            await Task.WhenAny(parkedSignal, Task.Delay(TakeOverWait)).ConfigureAwait(false);
        }
        else if (!HoldsParkedUpload)
        {
            // Nothing kept (expired, or this worker keeps no partial uploads): an ordinary offer, so an available worker
            // takes the job again and the hello's resume is answered "from byte 0".
            await HandleOfferAsync(offer).ConfigureAwait(false);
            return;
        }
        // The session that parked the upload must be done with the host's state before this one takes it.
        try { await previous.WaitAsync(TakeOverWait).ConfigureAwait(false); } catch (TimeoutException) { }
        var jobDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        string status;
        bool serve;
        lock (_gate)
        {
            status = _status;
            serve = _parkedUpload is not null && _session is null;
            if (serve) _currentJob = jobDone.Task;
        }
        if (!serve)
        {
            Note($"Rejecting a resume from {offer.Sender} - no partial upload is kept here (worker is {status})");
            await _signaling.SendBusyRejectionAsync(offer.Sender, status, _stopping.Token).ConfigureAwait(false);
            return;
        }
        try
        {
            Note($"Accepting a resume from {offer.Sender}");
            await ServeClientAsync(offer, resuming: true).ConfigureAwait(false);
        }
        finally
        {
            lock (_gate) _session = null;
            if (!HoldsParkedUpload) await ClearJobAndBecomeAvailableAsync().ConfigureAwait(false);
            jobDone.TrySetResult();
        }
    }

    private async Task HandleResumeOfferObservedAsync(SdpMessage offer)
    {
        try { await HandleResumeOfferAsync(offer).ConfigureAwait(false); }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            _log.Write(LogLevel.Error, Component, $"resume offer from {offer.Sender} failed: {e.GetType().Name}: {e.Message}");
        }
    }

    /// <summary>The worker stops: a partial upload nobody will resume here goes.</summary>
    private void DiscardParkedUpload()
    {
        ParkedUpload? parked;
        lock (_gate)
        {
            parked = _parkedUpload;
            _parkedUpload = null;
            _parkedUploadExpiry?.Dispose();
            _parkedUploadExpiry = null;
        }
        parked?.Discard();
    }
}
