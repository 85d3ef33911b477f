using System.Buffers;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;
using SleapRtc.Protocol.Logging;
using SleapRtc.Protocol.Signaling;

namespace SleapRtc.Signaling.Client;

/// <summary>Socket lifetime: open, read and dispatch, reconnect with backoff.</summary>
public sealed partial class SignalingClient
{
    private async Task<(ClientWebSocket Socket, Task Reader)> OpenAsync(CancellationToken ct)
    {
        var socket = new ClientWebSocket();
        socket.Options.KeepAliveInterval = TimeSpan.FromSeconds(20);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct, _disposed.Token);
        timeout.CancelAfter(_options.ConnectTimeout);
        try
        {
            await socket.ConnectAsync(Endpoints.WebSocket, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is WebSocketException or HttpRequestException or IOException
                                   || e is OperationCanceledException && !ct.IsCancellationRequested)
        {
            socket.Dispose();
            throw new SignalingException($"Could not connect to the signaling server at {Endpoints.WebSocket}: {e.Message}", inner: e);
        }
        _socket = socket;
        return (socket, Task.Run(() => ReadLoopAsync(socket)));
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
                if (SignalingJson.TryParse(text) is JsonObject parsed) Dispatch(parsed);
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
            FailWaiters(new SignalingException("The signaling connection closed."));
        }
    }

    private void Dispatch(JsonObject message)
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

    private void FailWaiters(Exception error)
    {
        List<TaskCompletionSource<JsonObject>> pending;
        lock (_waiterGate)
        {
            pending = _waiters.Select(w => w.Completion).ToList();
            _waiters.Clear();
        }
        foreach (var completion in pending) completion.TrySetException(error);
    }

    /// <summary>Waits for the current socket to end, then reconnects and re-registers with backoff until disposed.</summary>
    private async Task SuperviseAsync(Task reader)
    {
        while (true)
        {
            await reader.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
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

    private async Task<Task?> ReconnectAsync()
    {
        var delay = _options.InitialReconnectDelay;
        for (var attempt = 1; ; attempt++)
        {
            try { await Task.Delay(delay, _disposed.Token).ConfigureAwait(false); }
            catch (OperationCanceledException) { return null; }
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, _options.MaxReconnectDelay.Ticks));

            ClientWebSocket? socket = null;
            Task? reader = null;
            try
            {
                (socket, reader) = await OpenAsync(_disposed.Token).ConfigureAwait(false);
                RegistrationResult result;
                try
                {
                    result = await RegisterAsync(_disposed.Token).ConfigureAwait(false);
                }
                catch (SignalingException e) when (e.Code == ErrorCodes.InvalidIdToken || e.Error?.Raw.ContainsKey("error") == true && e.Error.Raw.GetString("type") is null)
                {
                    // The server lost or rotated its signing key (e.g. a :memory: store): sign in again under the same name.
                    var signIn = await AnonymousSignInAsync(_registration!.PeerId, _disposed.Token).ConfigureAwait(false);
                    IdToken = signIn.IdToken;
                    result = await RegisterAsync(_disposed.Token).ConfigureAwait(false);
                }
                _log.Write(LogLevel.Information, Component, $"Reconnected after {attempt} attempt(s)");
                Raise(Reconnected, result);
                return reader;
            }
            catch (OperationCanceledException) when (_disposed.IsCancellationRequested)
            {
                socket?.Abort();
                return null;
            }
            catch (Exception e) when (e is SignalingException or HttpRequestException or OperationCanceledException or IOException)
            {
                _log.Write(LogLevel.Warning, Component, $"Reconnect attempt {attempt} failed: {e.Message}; next in {delay.TotalSeconds:F0} s");
                socket?.Abort();
                if (reader is not null) await reader.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
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
