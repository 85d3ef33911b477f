using System.Text.Json.Nodes;
using SleapRtc.Protocol.Jobs;
using SleapRtc.Protocol.Logging;
using SleapRtc.Signaling.Client;
using SleapRtc.WebRtc;
using SleapRtc.Worker.Jobs;

namespace SleapRtc.Worker;

// Offers, the status lifecycle (available -> reserved -> busy -> available) and progress publishing.
public sealed partial class WorkerHost
{
    private JobProgress? _pendingProgress;
    private long _lastProgressPublishTicks;
    private int _progressPublishScheduled;

    private async Task HandleOfferObservedAsync(SdpMessage offer)
    {
        try
        {
            await HandleOfferAsync(offer).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Nothing a client does may take the worker down; log and serve the next one.
            _log.Write(LogLevel.Error, Component, $"offer from {offer.Sender} failed: {e.GetType().Name}: {e.Message}");
        }
    }

    private async Task HandleOfferAsync(SdpMessage offer)
    {
        if (_stopping.IsCancellationRequested) return;
        TaskCompletionSource jobDone;
        string refusedStatus;
        lock (_gate)
        {
            refusedStatus = _status;
            if (_status == WorkerStatus.Available)
            {
                // Atomic with the check: a second offer racing this one sees "reserved".
                _status = WorkerStatus.Reserved;
                jobDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _currentJob = jobDone.Task;
            }
            else
            {
                jobDone = null!;
            }
        }
        if (jobDone is null)
        {
            Note($"Rejecting connection from {offer.Sender} - worker is {refusedStatus}");
            await _signaling.SendBusyRejectionAsync(offer.Sender, refusedStatus, _stopping.Token).ConfigureAwait(false);
            return;
        }

        try
        {
            Note($"Accepting connection from {offer.Sender} (status: available)");
            StatusChanged?.Invoke(WorkerStatus.Reserved);
            Session.Status = WorkerStatus.Reserved;
            await PublishStatusAsync(WorkerStatus.Reserved).ConfigureAwait(false);
            await ServeClientAsync(offer).ConfigureAwait(false);
        }
        finally
        {
            lock (_gate) _session = null;
            await ClearJobAndBecomeAvailableAsync().ConfigureAwait(false);
            jobDone.TrySetResult();
        }
    }

    private async Task ServeClientAsync(SdpMessage offer)
    {
        var template = _options.PeerConnection ?? new PeerConnectionOptions();
        var connection = _options.PeerConnectionFactory.Create(new PeerConnectionOptions
        {
            StunServers = template.StunServers.Count > 0 ? template.StunServers : StunServers,
            IncludeLoopback = template.IncludeLoopback,
            LocalAddresses = template.LocalAddresses,
            MaxMessageSize = template.MaxMessageSize,
        });
        var clientGone = false;
        try
        {
            clientGone = await ServeClientAsync(offer, connection).ConfigureAwait(false);
        }
        finally
        {
            // A graceful shutdown waits for a vanished client in vain (seconds): be available meanwhile.
            if (clientGone) _ = connection.DisposeAsync().AsTask().ContinueWith(t => _ = t.Exception, TaskScheduler.Default);
            else await connection.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <returns>True when the client vanished.</returns>
    private async Task<bool> ServeClientAsync(SdpMessage offer, IPeerConnection connection)
    {
        var channelOpened = new TaskCompletionSource<(IDataChannel Channel, WorkerJobSession Session)>(TaskCreationOptions.RunContinuationsAsynchronously);
        // The session is created inside the event so it listens before the client's first message arrives.
        connection.DataChannelOpened += channel => channelOpened.TrySetResult((channel, NewSession(channel)));
        connection.StateChanged += state =>
        {
            if (state is PeerConnectionState.Failed or PeerConnectionState.Closed)
            {
                channelOpened.TrySetException(new IOException($"the peer connection {state.ToString().ToLowerInvariant()}"));
                WorkerJobSession? running;
                lock (_gate) running = _session;
                running?.PeerLost();
            }
        };

        using var reservation = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
        reservation.CancelAfter(_options.ReservationTimeout);
        IDataChannel channel;
        WorkerJobSession session;
        try
        {
            var answer = await connection.AcceptOfferAsync(offer.Sdp, reservation.Token).ConfigureAwait(false);
            await _signaling.SendAnswerAsync(offer.Sender, answer, reservation.Token).ConfigureAwait(false);
            (channel, session) = await channelOpened.Task.WaitAsync(reservation.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or SignalingException)
        {
            if (channelOpened.Task.IsCompletedSuccessfully) channelOpened.Task.Result.Session.Abandon();
            Note($"Client {offer.Sender} did not open a data channel ({(e is OperationCanceledException ? "timed out" : e.Message)}); available again");
            return true;
        }

        lock (_gate) _session = session;
        if (_stopping.IsCancellationRequested) session.Stop();

        var outcome = await session.RunAsync(CancellationToken.None).ConfigureAwait(false);
        Note($"Job {outcome.JobId} from {offer.Sender} ended: {outcome.End}{(outcome.Error is null ? "" : " (" + outcome.Error + ")")}");
        JobCompleted?.Invoke(outcome);
        // A vanished client cannot take part in a graceful close; waiting for it would only delay "available".
        if (outcome.End == WorkerJobEnd.ClientGone) return true;
        try { await channel.CloseAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false); }
        catch (Exception e) when (e is TimeoutException or IOException or InvalidOperationException or ObjectDisposedException) { }
        return false;
    }

    private WorkerJobSession NewSession(IDataChannel channel)
    {
        var session = new WorkerJobSession(channel, new WorkerJobOptions
        {
            JobsDirectory = _jobsDirectory,
            TrainerPath = _trainerPath,
            KeepAliveInterval = _options.KeepAliveInterval,
            IdleTimeout = _options.ClientIdleTimeout,
            HeartbeatInterval = _options.HeartbeatInterval,
            HeartbeatTimeout = _options.HeartbeatTimeout,
            PackageLimits = new PackageLimits { MaxCompressionRatio = _options.MaxPackageRatio, MaxUnpackedBytes = _options.MaxUnpackedSize },
        }, _log);
        session.JobStarted += () => _ = Task.Run(() => BecomeBusyAsync(session));
        session.LogLine += line => LogLine?.Invoke(line);
        session.ProgressChanged += OnJobProgress;
        return session;
    }

    private async Task BecomeBusyAsync(WorkerJobSession session)
    {
        lock (_gate)
        {
            if (_session != session || _status != WorkerStatus.Reserved) return;
            _status = WorkerStatus.Busy;
        }
        Session.Status = WorkerStatus.Busy;
        StatusChanged?.Invoke(WorkerStatus.Busy);
        await PublishAsync(new JsonObject { ["status"] = WorkerStatus.Busy, ["job"] = ProgressNode(session.Progress) }).ConfigureAwait(false);
    }

    private async Task ClearJobAndBecomeAvailableAsync()
    {
        if (_stopping.IsCancellationRequested) return;
        lock (_gate) { _status = WorkerStatus.Available; _pendingProgress = null; }
        Session.Status = WorkerStatus.Available;
        StatusChanged?.Invoke(WorkerStatus.Available);
        // Publishing "available" also ends the server's reservation hold for the last client.
        await PublishAsync(new JsonObject { ["status"] = WorkerStatus.Available, ["job"] = null }).ConfigureAwait(false);
    }

    private Task PublishStatusAsync(string status) => PublishAsync(new JsonObject { ["status"] = status });

    private async Task PublishAsync(JsonObject properties)
    {
        await _metadataLock.WaitAsync().ConfigureAwait(false);
        try
        {
            await _signaling.UpdateMetadataAsync(new JsonObject { ["properties"] = properties }, _stopping.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SignalingException or OperationCanceledException or InvalidOperationException)
        {
            // Offline for now: the signaling client re-registers with the merged metadata when it reconnects.
            _log.Write(LogLevel.Debug, Component, "metadata update deferred: " + e.Message);
        }
        finally
        {
            _metadataLock.Release();
        }
    }

    private void OnJobProgress(JobProgress progress)
    {
        ProgressChanged?.Invoke(progress);
        lock (_gate) _pendingProgress = progress;
        // At most one publish per interval (the monitor and Get-SleapWorker read it; the server must not be flooded).
        if (Interlocked.Exchange(ref _progressPublishScheduled, 1) == 1) return;
        var wait = _options.ProgressPublishInterval.TotalMilliseconds - (Environment.TickCount64 - Interlocked.Read(ref _lastProgressPublishTicks));
        _ = Task.Run(async () =>
        {
            if (wait > 0) await Task.Delay(TimeSpan.FromMilliseconds(wait)).ConfigureAwait(false);
            JsonNode? node;
            string status;
            lock (_gate)
            {
                node = _pendingProgress is null ? null : ProgressNode(_pendingProgress);
                status = _status;
            }
            Interlocked.Exchange(ref _lastProgressPublishTicks, Environment.TickCount64);
            Interlocked.Exchange(ref _progressPublishScheduled, 0);
            if (node is not null && status == WorkerStatus.Busy) await PublishAsync(new JsonObject { ["job"] = node }).ConfigureAwait(false);
        });
    }

    private async Task RepublishAfterReconnectAsync()
    {
        Note("Reconnected to the signaling server");
        string status;
        lock (_gate) status = _status;
        await PublishStatusAsync(status).ConfigureAwait(false);
    }

    private static JsonNode? ProgressNode(JobProgress progress) => JsonNode.Parse(JobExtensions.SerializeProgress(progress));

    private void SetLocalStatus(string status)
    {
        lock (_gate) _status = status;
        Session.Status = status;
        StatusChanged?.Invoke(status);
    }

    private void Note(string line)
    {
        _log.Write(LogLevel.Information, Component, line);
        LogLine?.Invoke(line);
    }
}
