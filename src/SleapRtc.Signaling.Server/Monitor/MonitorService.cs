using System.Globalization;
using System.Text;
using SleapRtc.Protocol.Logging;
using SleapRtc.Protocol.Signaling;
using SleapRtc.Signaling.Server;

namespace SleapRtc.Signaling.Monitor;

/// <summary>
/// The live monitor served from the signaling port: the page (<c>GET /</c>, <c>GET /monitor</c> and its two
/// assets), the room state document (<c>GET /api/rooms/{id}/state</c>) and the room event stream
/// (<c>GET /api/rooms/{id}/events</c>, text/event-stream). Room data needs <c>Authorization: Bearer &lt;room
/// token&gt;</c>; the token is never read from a query string and never logged.
/// The server hands every parsed request to <see cref="TryHandleAsync"/> and reports peer changes to
/// <see cref="NotifyPeerChanged"/>; see README.md in this folder for the exact hook.
/// </summary>
public sealed class MonitorService : IAsyncDisposable, Jobs.IJobQueueObserver
{
    private const string Component = "monitor";
    private const string ApiPrefix = "/api/rooms/";
    private const int MaxRoomIdLength = 128;

    /// <summary>Scripts and styles only from this origin, nothing inline, no framing, no plugins.</summary>
    internal const string ContentSecurityPolicy =
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
        "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

    private readonly IMonitorRoomDirectory _directory;
    private readonly MonitorOptions _options;
    private readonly ILogSink _log;
    private readonly CredentialThrottle _throttle;

    public MonitorService(IMonitorRoomDirectory directory, MonitorOptions? options = null, ILogSink? log = null)
        : this(directory, options, log, null) { }

    /// <param name="throttle">The server's throttle for every credential check, so wrong monitor tokens count with wrong
    /// register and HTTP tokens from the same address and for the same room; null: a throttle of its own.</param>
    internal MonitorService(IMonitorRoomDirectory directory, MonitorOptions? options, ILogSink? log, CredentialThrottle? throttle)
    {
        _directory = directory;
        _options = options ?? new MonitorOptions();
        _log = log ?? Log.Null;
        _throttle = throttle ?? new CredentialThrottle(5, TimeSpan.FromSeconds(1));
        Hub = new MonitorEventHub(directory, _log);
    }

    public MonitorEventHub Hub { get; }

    /// <summary>Call after a peer registered, left (disconnect or delete) or updated its metadata. Never blocks.</summary>
    public void NotifyPeerChanged(string roomId, string peerId) => Hub.NotifyPeerChanged(roomId, peerId);

    /// <summary>Call when a room was deleted or many of its peers changed at once.</summary>
    public void NotifyRoomChanged(string roomId) => Hub.NotifyRoomChanged(roomId);

    /// <summary>The room job queue whose tickets and records the state document and the events show (set once at start).</summary>
    internal IMonitorJobSource? Jobs
    {
        get => Hub.Jobs;
        set => Hub.Jobs = value;
    }

    void Jobs.IJobQueueObserver.JobChanged(string roomId, SleapRtc.Protocol.Signaling.JobRecord record) => Hub.NotifyJobChanged(roomId, record);

    void Jobs.IJobQueueObserver.QueueChanged(string roomId) => Hub.NotifyQueueChanged(roomId);

    /// <summary>
    /// Answers the request if it is one of the monitor's and returns true; the caller then closes the connection
    /// (every monitor response is sent with <c>Connection: close</c>). Returns false without writing anything for
    /// any other request, WebSocket upgrades included, so the server's own routing carries on.
    /// An event stream stays open until the client goes away, the viewer falls behind, or the token is cancelled.
    /// </summary>
    public async Task<bool> TryHandleAsync(MonitorHttpRequest request, Stream connection, CancellationToken cancellationToken)
    {
        if (request.Header("Upgrade") is not null) return false;
        var path = request.Path;

        if (MonitorAssets.Find(path) is { } asset)
        {
            if (request.Method == "HEAD")
            {
                await WriteHeadAsync(connection, 200, "OK", asset.ContentType, asset.Content.Length, "no-cache", cancellationToken).ConfigureAwait(false);
            }
            else if (!IsGet(request)) await WriteMethodNotAllowedAsync(connection, "GET, HEAD", cancellationToken).ConfigureAwait(false);
            else await WriteResponseAsync(connection, 200, "OK", asset.ContentType, asset.Content, "no-cache", null, cancellationToken).ConfigureAwait(false);
            return true;
        }

        if (!path.StartsWith(ApiPrefix, StringComparison.Ordinal)) return false;
        var rest = path[ApiPrefix.Length..];
        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        if (slash <= 0) return false;
        var endpoint = rest[(slash + 1)..];
        if (endpoint is not ("state" or "events")) return false;

        if (!IsGet(request))
        {
            await WriteMethodNotAllowedAsync(connection, "GET", cancellationToken).ConfigureAwait(false);
            return true;
        }
        var roomId = Uri.UnescapeDataString(rest[..slash]);
        if (!IsPlausibleRoomId(roomId))
        {
            await WriteErrorAsync(connection, 400, "Bad Request", "bad_request", "The room id is not valid.", cancellationToken).ConfigureAwait(false);
            return true;
        }
        if (await AuthoriseAsync(request, roomId, connection, cancellationToken).ConfigureAwait(false) is not { } token) return true;

        if (endpoint == "state")
        {
            _log.Write(LogLevel.Debug, Component, $"state of room {roomId}");
            var body = Encoding.UTF8.GetBytes(Hub.BuildStateJson(roomId));
            await WriteResponseAsync(connection, 200, "OK", "application/json; charset=utf-8", body, "no-store", null, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            await StreamEventsAsync(roomId, token, connection, cancellationToken).ConfigureAwait(false);
        }
        return true;
    }

    public ValueTask DisposeAsync() => Hub.DisposeAsync();

    /// <summary>The presented token when it opens the room; otherwise writes the refusal and returns null.</summary>
    private async Task<string?> AuthoriseAsync(MonitorHttpRequest request, string roomId, Stream connection, CancellationToken cancellationToken)
    {
        var presented = BearerToken(request.Header("Authorization"));
        if (presented is null)
        {
            _log.Write(LogLevel.Debug, Component, $"monitor request for room {roomId} without a bearer token");
            await WriteErrorAsync(connection, 401, "Unauthorized", "unauthorized",
                "This room needs its token: send it as 'Authorization: Bearer <room token>'.", cancellationToken).ConfigureAwait(false);
            return null;
        }
        var expected = await _directory.FindRoomTokenAsync(roomId, cancellationToken).ConfigureAwait(false);
        // An unknown room and a wrong token get the same answer, so the endpoint does not reveal which rooms exist.
        // The right token is checked first and never waits; a wrong one is answered after the throttle's delay for
        // this address and this room (about one a second once the free ones are used).
        if (!RoomTokens.Matches(expected, presented))
        {
            var delay = await _throttle.HoldBackFailureAsync(request.RemoteAddress ?? "unknown", roomId, cancellationToken).ConfigureAwait(false);
            _log.Write(LogLevel.Information, Component, $"monitor request for room {roomId} from {request.RemoteAddress ?? "?"} refused: unknown room or wrong token" +
                (delay > TimeSpan.Zero ? $" (answer held back {delay.TotalMilliseconds:F0} ms)" : ""));
            // The very status and body of the HTTP API's refusal (403 {"detail":"Invalid token"}): no endpoint tells
            // an unknown room from a wrong token, nor answers differently from the others.
            await WriteResponseAsync(connection, RoomTokens.RefusalStatus, "Forbidden", "application/json; charset=utf-8",
                Encoding.UTF8.GetBytes(SignalingJson.ToWire(RoomTokens.RefusalBody())), "no-store", null, cancellationToken).ConfigureAwait(false);
            return null;
        }
        return presented;
    }

    private async Task<bool> TokenStillOpensRoomAsync(string roomId, string token, CancellationToken cancellationToken)
    {
        var expected = await _directory.FindRoomTokenAsync(roomId, cancellationToken).ConfigureAwait(false);
        return RoomTokens.Matches(expected, token);
    }

    /// <summary>
    /// Constant-time comparison of the presented and the stored token. Both are hashed first so that neither the
    /// position of the first difference nor the stored token's length shows in the timing.
    /// </summary>
    internal static bool TokensMatch(string presented, string expected) => RoomTokens.Matches(expected, presented);

    private static string? BearerToken(string? authorization)
    {
        if (authorization is null) return null;
        var value = authorization.Trim();
        const string scheme = "Bearer ";
        if (value.Length <= scheme.Length || !value.StartsWith(scheme, StringComparison.OrdinalIgnoreCase)) return null;
        var token = value[scheme.Length..].Trim();
        return token.Length == 0 ? null : token;
    }

    private static bool IsPlausibleRoomId(string roomId) =>
        roomId.Length is > 0 and <= MaxRoomIdLength
        && roomId.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.');

    private static bool IsGet(MonitorHttpRequest request) => string.Equals(request.Method, "GET", StringComparison.Ordinal);

    /// <summary>Every event queued for the viewer, in server-sent-events form.</summary>
    private static string QueuedEvents(MonitorViewer viewer)
    {
        var batch = new StringBuilder();
        while (viewer.Events.TryRead(out var monitorEvent))
        {
            batch.Append("id: ").Append(monitorEvent.Id.ToString(CultureInfo.InvariantCulture))
                .Append("\nevent: ").Append(monitorEvent.Name)
                .Append("\ndata: ").Append(monitorEvent.DataJson).Append("\n\n");
        }
        return batch.ToString();
    }

    private async Task StreamEventsAsync(string roomId, string token, Stream connection, CancellationToken cancellationToken)
    {
        if (Hub.ViewerCount(roomId) >= _options.MaxViewersPerRoom)
        {
            await WriteErrorAsync(connection, 429, "Too Many Requests", "too_many_viewers",
                "Too many monitors are open on this room.", cancellationToken).ConfigureAwait(false);
            return;
        }

        using var viewer = Hub.Subscribe(roomId);
        using var streamEnd = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        _log.Write(LogLevel.Debug, Component, $"event stream opened for room {roomId}");
        await WriteHeadAsync(connection, 200, "OK", "text/event-stream; charset=utf-8", null, "no-store", streamEnd.Token).ConfigureAwait(false);
        var retry = (long)_options.ReconnectDelay.TotalMilliseconds;
        await WriteTextAsync(connection, $"retry: {retry.ToString(CultureInfo.InvariantCulture)}\n\n", streamEnd.Token).ConfigureAwait(false);

        // The client never sends anything after its request, so a finished read means it hung up: stop at once
        // instead of waiting for the next write to fail.
        var hangUp = WatchForHangUpAsync(connection, streamEnd);
        try
        {
            while (!streamEnd.IsCancellationRequested)
            {
                using var idle = CancellationTokenSource.CreateLinkedTokenSource(streamEnd.Token);
                idle.CancelAfter(_options.KeepAliveInterval);
                bool hasEvent;
                try
                {
                    hasEvent = await viewer.Events.WaitToReadAsync(idle.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!streamEnd.IsCancellationRequested)
                {
                    // A deleted or expired room ends its streams: the token no longer opens it, and a room created
                    // later under the same id must not be shown to viewers of the old one.
                    if (!await TokenStillOpensRoomAsync(roomId, token, streamEnd.Token).ConfigureAwait(false))
                    {
                        // The departures the deletion caused are told before the stream ends.
                        Hub.RefreshNow(roomId);
                        await WriteTextAsync(connection, QueuedEvents(viewer), streamEnd.Token).ConfigureAwait(false);
                        _log.Write(LogLevel.Information, Component, $"event stream of room {roomId} closed: the room is gone or expired");
                        break;
                    }
                    await WriteTextAsync(connection, ": keep-alive\n\n", streamEnd.Token).ConfigureAwait(false);
                    continue;
                }
                if (!hasEvent) break;
                await WriteTextAsync(connection, QueuedEvents(viewer), streamEnd.Token).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or ObjectDisposedException)
        {
            // The client went away or the server is stopping; either way this stream is over.
        }
        finally
        {
            await streamEnd.CancelAsync().ConfigureAwait(false);
            await hangUp.ConfigureAwait(false);
            _log.Write(LogLevel.Debug, Component, $"event stream closed for room {roomId}");
        }
    }

    private static async Task WatchForHangUpAsync(Stream connection, CancellationTokenSource streamEnd)
    {
        var scratch = new byte[256];
        try
        {
            while (await connection.ReadAsync(scratch, streamEnd.Token).ConfigureAwait(false) > 0)
            {
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or ObjectDisposedException)
        {
        }
        finally
        {
            try { await streamEnd.CancelAsync().ConfigureAwait(false); }
            catch (ObjectDisposedException) { }
        }
    }

    private static Task WriteMethodNotAllowedAsync(Stream connection, string allow, CancellationToken cancellationToken) =>
        WriteErrorAsync(connection, 405, "Method Not Allowed", "method_not_allowed", $"Only {allow} is supported here.", cancellationToken, $"Allow: {allow}\r\n");

    private static Task WriteErrorAsync(Stream connection, int status, string reason, string error, string message,
        CancellationToken cancellationToken, string? extraHeaders = null)
    {
        var body = Encoding.UTF8.GetBytes(
            $"{{\"error\":{MonitorEventHub.JsonText(error)},\"message\":{MonitorEventHub.JsonText(message)}}}");
        if (status == 401) extraHeaders += "WWW-Authenticate: Bearer realm=\"sleap-rtc-monitor\"\r\n";
        return WriteResponseAsync(connection, status, reason, "application/json; charset=utf-8", body, "no-store", extraHeaders, cancellationToken);
    }

    private static async Task WriteResponseAsync(Stream connection, int status, string reason, string contentType, byte[] body,
        string cacheControl, string? extraHeaders, CancellationToken cancellationToken)
    {
        await WriteHeadAsync(connection, status, reason, contentType, body.Length, cacheControl, cancellationToken, extraHeaders).ConfigureAwait(false);
        await connection.WriteAsync(body, cancellationToken).ConfigureAwait(false);
        await connection.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    private static Task WriteHeadAsync(Stream connection, int status, string reason, string contentType, long? contentLength,
        string cacheControl, CancellationToken cancellationToken, string? extraHeaders = null)
    {
        var head = new StringBuilder(512)
            .Append("HTTP/1.1 ").Append(status.ToString(CultureInfo.InvariantCulture)).Append(' ').Append(reason).Append("\r\n")
            .Append("Content-Type: ").Append(contentType).Append("\r\n");
        if (contentLength is long length) head.Append("Content-Length: ").Append(length.ToString(CultureInfo.InvariantCulture)).Append("\r\n");
        head.Append("Cache-Control: ").Append(cacheControl).Append("\r\n")
            .Append("Content-Security-Policy: ").Append(ContentSecurityPolicy).Append("\r\n")
            .Append("X-Content-Type-Options: nosniff\r\n")
            .Append("X-Frame-Options: DENY\r\n")
            .Append("Referrer-Policy: no-referrer\r\n")
            .Append("Cross-Origin-Resource-Policy: same-origin\r\n")
            .Append("Connection: close\r\n")
            .Append(extraHeaders)
            .Append("\r\n");
        return WriteTextAsync(connection, head.ToString(), cancellationToken);
    }

    private static async Task WriteTextAsync(Stream connection, string text, CancellationToken cancellationToken)
    {
        await connection.WriteAsync(Encoding.UTF8.GetBytes(text), cancellationToken).ConfigureAwait(false);
        await connection.FlushAsync(cancellationToken).ConfigureAwait(false);
    }
}
