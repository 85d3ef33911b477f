using System.Buffers;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;
using SleapRtc.Protocol.Logging;
using SleapRtc.Protocol.Signaling;

namespace SleapRtc.Signaling.Client;

/// <summary>
/// Socket lifetime: open, read and dispatch, fail over along the server list, move off a draining instance.
/// Failover keeps the peer id: the client registers again under the same id on whichever instance answers (the
/// instances share the room store and the id-token key), so session strings already handed out stay valid, and
/// it re-announces its metadata (the registration carries every update made since). P2P data channels never
/// touch signaling: a job running over one is not affected by any of this.
/// </summary>
public sealed partial class SignalingClient
{
    /// <summary>Raised by a server_draining message: the supervisor then moves this peer to another instance.</summary>
    private TaskCompletionSource<ClientWebSocket> _drainNotice = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Opens a WebSocket to one server; the socket is not in use (<see cref="_socket"/>) until it registered.</summary>
    private async Task<(ClientWebSocket Socket, Task Reader)> OpenAsync(SignalingEndpoints server, CancellationToken ct)
    {
        var socket = new ClientWebSocket();
        socket.Options.KeepAliveInterval = TimeSpan.FromSeconds(20);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct, _disposed.Token);
        timeout.CancelAfter(_options.ConnectTimeout);
        try
        {
            await socket.ConnectAsync(server.WebSocket, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is WebSocketException or HttpRequestException or IOException
                                   || e is OperationCanceledException && !ct.IsCancellationRequested)
        {
            socket.Dispose();
            throw new SignalingException($"Could not connect to the signaling server at {server.WebSocket}: {e.Message}", inner: e);
        }
        return (socket, Task.Run(() => ReadLoopAsync(socket)));
    }

    /// <summary>
    /// Connects and registers on the first server of <paramref name="order"/> (indexes into <see cref="Servers"/>) that
    /// answers, and makes it the one in use. A server that cannot be reached, closes or stalls before answering, or says
    /// it cannot reach its shared store (SERVER_UNAVAILABLE) is skipped; a server that refuses the registration (wrong
    /// token, unknown room…) ends the attempt, since the instances share their rooms and every one would refuse alike.
    /// </summary>
    private async Task<(ClientWebSocket Socket, Task Reader, RegistrationResult Result)> ConnectAndRegisterAsync(
        IEnumerable<int> order, bool signInAgainOnInvalidIdToken, CancellationToken ct)
    {
        var failures = new List<string>();
        foreach (var index in order)
        {
            var previous = Volatile.Read(ref _current);
            ClientWebSocket? socket = null;
            Task? reader = null;
            try
            {
                (socket, reader) = await OpenAsync(Servers[index], ct).ConfigureAwait(false);
                // HTTP calls (a sign-in again) go to the same instance as the socket.
                Volatile.Write(ref _current, index);
                var result = await RegisterOnAsync(socket, signInAgainOnInvalidIdToken, ct).ConfigureAwait(false);
                _socket = socket;
                return (socket, reader, result);
            }
            catch (SignalingException e) when ((e.Error is null || e.Code == ErrorCodes.ServerUnavailable) && !ct.IsCancellationRequested && !_disposed.IsCancellationRequested)
            {
                failures.Add(e.Message);
                await AbandonAsync(socket, reader).ConfigureAwait(false);
                Volatile.Write(ref _current, previous);
            }
            catch
            {
                await AbandonAsync(socket, reader).ConfigureAwait(false);
                Volatile.Write(ref _current, previous);
                throw;
            }
        }
        throw new SignalingException(failures.Count == 1 ? failures[0]
            : $"None of the {failures.Count} signaling servers could be used: {string.Join(" | ", failures)}");
    }

    private static async Task AbandonAsync(ClientWebSocket? socket, Task? reader)
    {
        socket?.Abort();
        if (reader is not null) await reader.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        socket?.Dispose();
    }

    private async Task<RegistrationResult> RegisterOnAsync(ClientWebSocket socket, bool signInAgainOnInvalidIdToken, CancellationToken ct)
    {
        try
        {
            return await RegisterAsync(ct, socket).ConfigureAwait(false);
        }
        catch (SignalingException e) when (signInAgainOnInvalidIdToken
            && (e.Code == ErrorCodes.InvalidIdToken || e.Error?.Raw.ContainsKey("error") == true && e.Error.Raw.GetString("type") is null))
        {
            // The server lost or rotated its signing key (e.g. a :memory: store, or instances not sharing one):
            // sign in again under the same name, so the peer id stays.
            var signIn = await AnonymousSignInAsync(_registration!.PeerId, ct).ConfigureAwait(false);
            IdToken = signIn.IdToken;
            return await RegisterAsync(ct, socket).ConfigureAwait(false);
        }
    }

    /// <summary>Every server, the one in use last: where to go after the connection to it dropped.</summary>
    private IEnumerable<int> ReconnectOrder()
    {
        var current = Volatile.Read(ref _current);
        return Enumerable.Range(1, Servers.Count).Select(i => (current + i) % Servers.Count);
    }

    /// <summary>Every server but the one in use: where to go when it drains.</summary>
    private IEnumerable<int> MoveOrder()
    {
        var current = Volatile.Read(ref _current);
        return Enumerable.Range(1, Servers.Count - 1).Select(i => (current + i) % Servers.Count);
    }

    private async Task ReadLoopAsync(ClientWebSocket socket)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(16 * 1024);
        var message = new ArrayBufferWriter<byte>(16 * 1024);
        try
        {
            while (socket.State == WebSocketState.Open)
            {
                message.ResetWrittenCount();
                ValueWebSocketReceiveResult result;
                do
                {
                    result = await socket.ReceiveAsync(buffer.AsMemory(), _disposed.Token).ConfigureAwait(false);
                    if (result.MessageType == WebSocketMessageType.Close) return;
                    if (message.WrittenCount + result.Count > MaxIncomingMessageBytes)
                    {
                        _log.Write(LogLevel.Warning, Component, "Dropping the connection: the server sent an oversized message");
                        return;
                    }
                    message.Write(buffer.AsSpan(0, result.Count));
                } while (!result.EndOfMessage);

                var text = Encoding.UTF8.GetString(message.WrittenSpan);
                if (SignalingJson.TryParse(text) is JsonObject parsed) Dispatch(parsed, socket);
                else _log.Write(LogLevel.Warning, Component, "Ignored a non-JSON message from the server");
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException or ObjectDisposedException)
        {
            // Connection lost or client disposed: the supervisor decides what happens next.
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            FailWaiters(new SignalingException("The signaling connection closed."), socket);
        }
    }

    private void Dispatch(JsonObject message, ClientWebSocket socket)
    {
        var type = message.GetString("type");
        Raise(MessageReceived, message);
        switch (type)
        {
            case MessageTypes.RegisteredAuth or MessageTypes.PeerList or MessageTypes.MetadataUpdated
                or JobQueueMessages.Ticket or JobQueueMessages.List or JobQueueMessages.CancelAccepted:
                CompleteWaiter(type, message);
                break;
            case JobQueueMessages.Position or JobQueueMessages.Assigned or JobQueueMessages.Cancel:
                DispatchJobPush(type, message);
                break;
            case MessageTypes.Offer or MessageTypes.Answer:
                var sdp = new SdpMessage(type, message.GetString("sender") ?? "", message.GetString("sdp") ?? "", message);
                Raise(type == MessageTypes.Offer ? OfferReceived : AnswerReceived, sdp);
                break;
            case MessageTypes.Candidate:
                Raise(CandidateReceived, new CandidateMessage(message.GetString("sender") ?? "", message["candidate"], message));
                break;
            case MessageTypes.PeerMessage:
                Raise(PeerMessageReceived, new PeerMessage(message.GetString("from_peer_id") ?? "", message["payload"], message));
                break;
            case DrainingMessages.ServerDraining:
                _log.Write(LogLevel.Information, Component, $"The signaling server at {Endpoints.WebSocket} is draining; moving to another instance");
                Volatile.Read(ref _drainNotice).TrySetResult(socket);
                break;
            case IceServerRenewalMessages.IceServersRenewed:
                // Fresh credentials for this peer whichever instance sent them (one being drained too): use them from now on.
                if (message[IceServerRenewalMessages.IceServersKey] is JsonArray renewed)
                {
                    Volatile.Write(ref _iceServers, (JsonArray)renewed.DeepClone());
                    _log.Write(LogLevel.Debug, Component, "The signaling server renewed this peer's TURN credentials");
                }
                break;
            case MessageTypes.Ping:
                try { PingReceived?.Invoke(); }
                catch (Exception e) { LogHandlerFailure(e); }
                break;
            case MessageTypes.Error or null when type is not null || message.ContainsKey("error"):
                var error = SignalingError.From(message);
                FailWaiterFor(error);
                Raise(ErrorReceived, error);
                break;
        }
    }

    private void Raise<T>(Action<T>? handler, T argument)
    {
        if (handler is null) return;
        try { handler(argument); }
        catch (Exception e) { LogHandlerFailure(e); }
    }

    private void LogHandlerFailure(Exception e)
        => _log.Write(LogLevel.Error, Component, $"A signaling event handler threw {e.GetType().Name}: {e.Message}");

    private void CompleteWaiter(string responseType, JsonObject message)
    {
        TaskCompletionSource<JsonObject>? completion = null;
        lock (_waiterGate)
        {
            var index = _waiters.FindIndex(w => w.ResponseType == responseType);
            if (index >= 0)
            {
                completion = _waiters[index].Completion;
                _waiters.RemoveAt(index);
            }
        }
        completion?.TrySetResult(message);
    }

    /// <summary>
    /// Matches a server error to the request it answers: by in_reply_to (our server), else by shape
    /// (classic: "reason" or the type-less "error" answer registration), else the oldest pending request.
    /// Errors relayed from peers (they carry a sender) answer no request.
    /// </summary>
    private void FailWaiterFor(SignalingError error)
    {
        if (error.Sender is not null && error.InReplyTo is null) return;
        TaskCompletionSource<JsonObject>? completion = null;
        lock (_waiterGate)
        {
            int index;
            if (error.InReplyTo is { } requestType) index = _waiters.FindIndex(w => w.RequestType == requestType);
            else if (error.Reason is not null && error.Code is null) index = _waiters.FindIndex(w => w.RequestType == MessageTypes.Register);
            else index = _waiters.Count > 0 ? 0 : -1;
            if (index >= 0)
            {
                completion = _waiters[index].Completion;
                _waiters.RemoveAt(index);
            }
        }
        completion?.TrySetException(new SignalingException($"The signaling server refused the request: {error.Describe()}", error));
    }

    /// <summary>Fails the requests sent on <paramref name="socket"/> (all requests when null).</summary>
    private void FailWaiters(Exception error, ClientWebSocket? socket = null)
    {
        List<TaskCompletionSource<JsonObject>> pending;
        lock (_waiterGate)
        {
            var ended = _waiters.Where(w => socket is null || ReferenceEquals(w.Socket, socket)).ToList();
            pending = ended.Select(w => w.Completion).ToList();
            foreach (var waiter in ended) _waiters.Remove(waiter);
        }
        foreach (var completion in pending) completion.TrySetException(error);
    }

    /// <summary>
    /// Waits for the socket in use to end or its server to drain. A drain moves the peer (make before break:
    /// registered on another instance first, then the old connection closed, so the peer is never away); a lost
    /// connection is followed by reconnects along the server list until one succeeds or the client is disposed.
    /// </summary>
    private async Task SuperviseAsync(Task reader)
    {
        while (true)
        {
            var notice = Volatile.Read(ref _drainNotice);
            var ended = await Task.WhenAny(reader, notice.Task).ConfigureAwait(false);
            if (ended == notice.Task)
            {
                Volatile.Write(ref _drainNotice, new TaskCompletionSource<ClientWebSocket>(TaskCreationOptions.RunContinuationsAsynchronously));
                if (!ReferenceEquals(notice.Task.Result, _socket) || reader.IsCompleted) continue;
                if (await MoveAsync(reader).ConfigureAwait(false) is { } moved) reader = moved;
                // Nowhere to go: leave at once, so the drain does not wait for us, and reconnect as after any drop.
                else await CloseQuietlyAsync(_socket, "no other instance to move to").ConfigureAwait(false);
                continue;
            }

            if (_disposed.IsCancellationRequested) return;
            Registration = null;
            _log.Write(LogLevel.Warning, Component, "Signaling connection lost");
            Raise(Disconnected, (Exception?)null);
            if (!_options.AutoReconnect) return;

            var next = await ReconnectAsync().ConfigureAwait(false);
            if (next is null) return;
            reader = next;
        }
    }

    /// <summary>
    /// Moves off a draining instance: registers on another one, then says goodbye to the old one. Returns the new
    /// reader, or null when no other instance could take the peer.
    /// </summary>
    private async Task<Task?> MoveAsync(Task oldReader)
    {
        var old = _socket;
        if (Servers.Count == 1)
        {
            _log.Write(LogLevel.Information, Component, "No other signaling server to move to; reconnecting when this one is back");
            return null;
        }
        try
        {
            var (_, reader, result) = await ConnectAndRegisterAsync(MoveOrder(), signInAgainOnInvalidIdToken: true, _disposed.Token).ConfigureAwait(false);
            _log.Write(LogLevel.Information, Component, $"Moved to the signaling server at {Endpoints.WebSocket}");
            await CloseQuietlyAsync(old, "moved to another instance").ConfigureAwait(false);
            _ = RetireAsync(old, oldReader);
            Raise(Reconnected, result);
            return reader;
        }
        catch (Exception e) when (e is SignalingException or HttpRequestException or IOException
                                   || e is OperationCanceledException && !_disposed.IsCancellationRequested)
        {
            _log.Write(LogLevel.Warning, Component, $"Could not move off the draining server: {e.Message}; reconnecting along the server list");
            return null;
        }
        catch (OperationCanceledException)
        {
            return null;
        }
    }

    /// <summary>Frees a connection left for another: its reader ends when the server answers the close (or gives up).</summary>
    private static async Task RetireAsync(ClientWebSocket? socket, Task reader)
    {
        try { await reader.WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false); }
        catch (TimeoutException) { }
        socket?.Abort();
        await reader.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        socket?.Dispose();
    }

    private static async Task CloseQuietlyAsync(ClientWebSocket? socket, string why)
    {
        if (socket?.State != WebSocketState.Open) return;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(1));
        try { await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, why, timeout.Token).ConfigureAwait(false); }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException or ObjectDisposedException) { }
    }

    /// <summary>
    /// Reconnects along the server list (the next server first: the one in use just failed). Each round tries every
    /// server back to back; rounds are spaced by a delay that doubles up to <see cref="SignalingClientOptions.MaxReconnectDelay"/>,
    /// with jitter so the peers of a failed instance do not all arrive at once (the first round waits a random
    /// fraction of <see cref="SignalingClientOptions.InitialReconnectDelay"/>, later ones between half and all of theirs).
    /// </summary>
    private async Task<Task?> ReconnectAsync()
    {
        var ceiling = _options.InitialReconnectDelay;
        for (var round = 1; ; round++)
        {
            var delay = TimeSpan.FromTicks((long)(ceiling.Ticks * (round == 1 ? Random.Shared.NextDouble() : 0.5 + Random.Shared.NextDouble() / 2)));
            try { await Task.Delay(delay, _disposed.Token).ConfigureAwait(false); }
            catch (OperationCanceledException) { return null; }
            ceiling = TimeSpan.FromTicks(Math.Min(ceiling.Ticks * 2, _options.MaxReconnectDelay.Ticks));

            try
            {
                var (_, reader, result) = await ConnectAndRegisterAsync(ReconnectOrder(), signInAgainOnInvalidIdToken: true, _disposed.Token).ConfigureAwait(false);
                _log.Write(LogLevel.Information, Component, $"Reconnected to {Endpoints.WebSocket} after {round} round(s)");
                Raise(Reconnected, result);
                return reader;
            }
            catch (OperationCanceledException) when (_disposed.IsCancellationRequested)
            {
                return null;
            }
            catch (Exception e) when (e is SignalingException or HttpRequestException or OperationCanceledException or IOException)
            {
                _log.Write(LogLevel.Warning, Component, $"Reconnect round {round} failed: {e.Message}; next in about {ceiling.TotalSeconds:F0} s");
            }
        }
    }

    /// <summary>Closes the connection (politely, within a second) and stops reconnecting.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposeStarted, 1) == 1) return;
        var socket = _socket;
        if (socket?.State == WebSocketState.Open)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(1));
            try { await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "bye", timeout.Token).ConfigureAwait(false); }
            catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException or ObjectDisposedException) { }
        }
        _disposed.Cancel();
        socket?.Abort();
        if (_supervisor is not null)
        {
            try { await _supervisor.WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false); }
            catch (TimeoutException) { }
        }
        FailWaiters(new ObjectDisposedException(nameof(SignalingClient)));
        socket?.Dispose();
        _http.Dispose();
    }
}
