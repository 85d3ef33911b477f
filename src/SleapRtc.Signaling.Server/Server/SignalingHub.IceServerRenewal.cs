using System.Text.Json;
using SleapRtc.Protocol.Logging;
using SleapRtc.Protocol.Signaling;

namespace SleapRtc.Signaling.Server;

/// <summary>
/// Renewal of TURN credentials for connected peers (<see cref="IceServerRenewalMessages"/>). The credentials in
/// registered_auth expire after <see cref="TurnCredentialIssuer.Lifetime"/>; a worker stays connected for weeks and
/// would hand expired ones to every relayed connection it makes. So each connection of a peer that asked for renewals
/// runs one loop that sends it fresh ICE servers before its credentials expire. Pushing them (rather than letting the
/// peer ask before each connection) keeps the connect path free of an extra signaling round trip and works the same
/// for a worker answering offers and a client making them. Each instance of a cluster renews the peers connected to
/// it: the loop lives and dies with the connection.
/// </summary>
internal sealed partial class SignalingHub
{
    /// <summary>Called on every successful registration: (re)sets the due time and starts the connection's loop once.</summary>
    private void ScheduleIceServerRenewal(PeerSocket peer)
    {
        if (Turn is not { } turn || !peer.RenewsIceServers) return;
        // A re-registration on the same connection just issued fresh credentials: the running loop sees the later due time.
        Volatile.Write(ref peer.IceServersRenewalDue, Environment.TickCount64 + (long)turn.NextRenewalDelay().TotalMilliseconds);
        if (Interlocked.Exchange(ref peer.IceServersRenewalStarted, 1) == 1) return;
        _ = RenewIceServersAsync(peer, turn, peer.Lifetime);
    }

    private async Task RenewIceServersAsync(PeerSocket peer, TurnCredentialIssuer turn, CancellationToken connectionEnded)
    {
        // Task.Delay takes at most ~24.8 days; a longer configured lifetime just waits in steps.
        var longestWait = TimeSpan.FromDays(1);
        try
        {
            while (!connectionEnded.IsCancellationRequested)
            {
                var wait = TimeSpan.FromMilliseconds(Volatile.Read(ref peer.IceServersRenewalDue) - Environment.TickCount64);
                if (wait > TimeSpan.Zero)
                {
                    await Task.Delay(wait < longestWait ? wait : longestWait, connectionEnded).ConfigureAwait(false);
                    continue;
                }
                Volatile.Write(ref peer.IceServersRenewalDue, Environment.TickCount64 + (long)turn.NextRenewalDelay().TotalMilliseconds);
                // Registered again on this connection without asking for renewals: it gets none (the loop stays for a later ask).
                if (!peer.RenewsIceServers) continue;
                if (!peer.TrySendUtf8(BuildIceServersRenewed(peer))) return;
                // The peer id only: the message carries the credentials, the log never does.
                _log.Write(LogLevel.Debug, Component, $"Sent peer {peer.PeerId} fresh TURN credentials (valid {turn.Lifetime.TotalHours:0.##} h)");
            }
        }
        catch (OperationCanceledException)
        {
            // The connection ended or the server stopped.
        }
        catch (Exception e)
        {
            _log.Write(LogLevel.Error, Component, $"Renewing the TURN credentials of peer {peer.PeerId} failed: {e.GetType().Name}");
        }
    }

    private byte[] BuildIceServersRenewed(PeerSocket peer)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = SignalingJson.WireOptions.Encoder, SkipValidation = true }))
        {
            w.WriteStartObject();
            w.WriteString("type", IceServerRenewalMessages.IceServersRenewed);
            w.WritePropertyName(IceServerRenewalMessages.IceServersKey);
            WriteIceServers(w, peer);
            w.WriteEndObject();
        }
        return buffer.ToArray();
    }
}
