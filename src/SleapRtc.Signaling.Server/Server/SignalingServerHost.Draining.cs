using System.Net.WebSockets;
using System.Text;
using SleapRtc.Protocol.Logging;
using SleapRtc.Protocol.Signaling;
#if NET8_0_OR_GREATER
using System.Runtime.InteropServices;
#endif

namespace SleapRtc.Signaling.Server;

/// <summary>
/// Draining: stopping one instance of several (sharing a store) without dropping its peers. The instance stops
/// accepting (new connections go to the other instances of the clients' server lists), closes its idle HTTP
/// connections, tells every peer that asked for it to move (<see cref="DrainingMessages.ServerDraining"/>: the peer
/// registers on another instance under the same id, then says goodbye here), closes the connections of classic
/// peers (they reconnect as after any restart), and stops when every peer has gone or the drain timeout has passed.
/// P2P jobs are untouched: their data channels never pass through the server.
/// </summary>
public sealed partial class SignalingServerHost
{
    /// <summary>Cancelled when the server stops accepting connections: at a drain's start, or at the stop.</summary>
    private readonly CancellationTokenSource _accepting = new();
    private int _drainRequested;

    /// <summary>True from a drain's start until the server stopped.</summary>
    public bool IsDraining => Volatile.Read(ref _drainRequested) == 1 && !_completion.Task.IsCompleted;

    /// <summary>How long a drain waits by default (<see cref="SignalingServerOptions.DrainTimeout"/>).</summary>
    public TimeSpan DrainTimeout => _options.DrainTimeout;

    /// <summary>Peers connected to this instance (a drain waits for it to reach zero).</summary>
    public int ConnectedPeers => _sockets.Count;

    /// <summary>
    /// Drains and stops (see the type's summary). <paramref name="timeout"/>: how long peers get to move (null: the
    /// configured <see cref="SignalingServerOptions.DrainTimeout"/>; zero: stop at once). Completes when the server
    /// has stopped. Cancelling <paramref name="ct"/> cuts the wait short and stops at once.
    /// </summary>
    public async Task DrainAsync(TimeSpan? timeout = null, CancellationToken ct = default)
    {
        var limit = timeout ?? _options.DrainTimeout;
        if (limit <= TimeSpan.Zero || Interlocked.Exchange(ref _drainRequested, 1) == 1 || Volatile.Read(ref _stopRequested) == 1)
        {
            // A second drain waits for the first one's stop.
            if (limit > TimeSpan.Zero && Volatile.Read(ref _stopRequested) == 0 && Volatile.Read(ref _drainRequested) == 1)
            {
                try { await _completion.Task.WaitAsync(ct).ConfigureAwait(false); return; }
                catch (OperationCanceledException) { }
            }
            await StopAsync().ConfigureAwait(false);
            return;
        }

        var clock = System.Diagnostics.Stopwatch.StartNew();
        StopAccepting();
        foreach (var (id, client) in _connections)
            if (!_sockets.ContainsKey(id)) client.Dispose();

        var notice = Encoding.UTF8.GetBytes(SignalingJson.ToWire(new System.Text.Json.Nodes.JsonObject
        {
            ["type"] = DrainingMessages.ServerDraining,
            [DrainingMessages.TimeoutMsKey] = (long)limit.TotalMilliseconds,
        }));
        int told = 0, closed = 0;
        foreach (var socket in _sockets.Values)
        {
            if (socket.MovesWhenDraining && socket.TrySendUtf8(notice)) told++;
            else
            {
                socket.Close(ServiceRestart, "Server draining");
                closed++;
            }
        }
        _log.Write(LogLevel.Information, Component,
            $"Draining signaling server on port {Port}: told {told} peer(s) to move, closed {closed} classic connection(s); stopping within {limit.TotalSeconds:F0} s");

        try
        {
            while (!_sockets.IsEmpty && clock.Elapsed < limit)
                await Task.Delay(TimeSpan.FromMilliseconds(50), ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException) { }
        var left = _sockets.Count;
        _log.Write(LogLevel.Information, Component, left == 0
            ? $"Every peer left within {clock.Elapsed.TotalSeconds:F1} s"
            : $"{left} peer(s) had not moved after {clock.Elapsed.TotalSeconds:F1} s; closing their connections");
        await StopAsync().ConfigureAwait(false);
    }

    /// <summary>1012 (RFC 6455 registry: Service Restart): the peer should reconnect, possibly elsewhere.</summary>
    private const WebSocketCloseStatus ServiceRestart = (WebSocketCloseStatus)1012;

    private void StopAccepting()
    {
        try { _accepting.Cancel(); }
        catch (ObjectDisposedException) { }
        _listener.Stop();
    }

    /// <summary>
    /// While the returned registration is held, SIGTERM (what service managers send to stop a service) drains this
    /// server instead of ending the process at once; the process ends when the caller sees <see cref="Completion"/>.
    /// On .NET Framework (Windows PowerShell) there is no such signal and nothing is registered.
    /// </summary>
    public IDisposable DrainOnTerminationSignal()
    {
#if NET8_0_OR_GREATER
        return PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
        {
            context.Cancel = true;
            _log.Write(LogLevel.Information, Component, "SIGTERM received: draining");
            _ = DrainAsync();
        });
#else
        return new NoRegistration();
#endif
    }

#if !NET8_0_OR_GREATER
    private sealed class NoRegistration : IDisposable
    {
        public void Dispose() { }
    }
#endif
}
