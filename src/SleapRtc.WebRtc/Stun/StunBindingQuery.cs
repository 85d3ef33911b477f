using System.Net;
using System.Net.Sockets;
using SleapRtc.WebRtc.Ice;

namespace SleapRtc.WebRtc.Stun;

/// <summary>What a STUN server answered: the local address the request left from and the address the server saw.</summary>
public sealed record StunBindingResult(IPEndPoint Local, IPEndPoint Mapped)
{
    /// <summary>True when the server saw another address than the local one: a NAT is between.</summary>
    public bool BehindNat => !Mapped.Address.Equals(Local.Address);
}

/// <summary>
/// One STUN Binding request from a fresh socket, for diagnostics (Test-SleapConnection): the address a STUN server sees
/// this machine at, also when it equals the local one (ICE gathering drops such an srflx candidate, which a diagnostic
/// must tell from "no answer"). Retransmits per RFC 8489 §6.2.1 until the timeout.
/// </summary>
public static class StunBindingQuery
{
    /// <summary>The server of a "stun:host[:port]" URL (first IPv4 address); null when it is not one or does not resolve.</summary>
    public static async Task<IPEndPoint?> ResolveAsync(string stunUrl, CancellationToken cancellationToken)
    {
        if (IceAgent.ParseStunUrl(stunUrl) is not { } parsed) return null;
        if (IPAddress.TryParse(parsed.Host, out var literal)) return new IPEndPoint(literal, parsed.Port);
        try
        {
            var addresses = await Dns.GetHostAddressesAsync(parsed.Host).WaitAsync(TimeSpan.FromSeconds(5), cancellationToken).ConfigureAwait(false);
            return addresses.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork) is { } address ? new IPEndPoint(address, parsed.Port) : null;
        }
        catch (Exception e) when (e is SocketException or TimeoutException) { return null; }
    }

    /// <summary>
    /// Asks <paramref name="server"/> from <paramref name="localAddress"/> (null: the address the route to the server
    /// leaves from); null when it did not answer within <paramref name="timeout"/>.
    /// </summary>
    public static async Task<StunBindingResult?> QueryAsync(IPEndPoint server, IPAddress? localAddress, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        try
        {
            socket.Bind(new IPEndPoint(localAddress ?? IPAddress.Any, 0));
            // A connected UDP socket learns its source address from the route, and hears only the server.
            socket.Connect(server);
        }
        catch (SocketException)
        {
            return null; // no route from that address
        }
        var local = (IPEndPoint)socket.LocalEndPoint!;
        var transactionId = StunMessageBuilder.NewTransactionId();
        var request = new StunMessageBuilder(StunMethod.Binding, StunClass.Request, transactionId).AddFingerprint().ToArray();
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        var buffer = new byte[1500];
        var rto = TimeSpan.FromMilliseconds(100);
        try
        {
            while (true)
            {
                await socket.SendAsync(new ArraySegment<byte>(request), SocketFlags.None).ConfigureAwait(false);
                using var wait = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token);
                wait.CancelAfter(rto);
                try
                {
                    while (true)
                    {
                        var received = await socket.ReceiveAsync(new ArraySegment<byte>(buffer), SocketFlags.None).WaitAsync(wait.Token).ConfigureAwait(false);
                        if (StunMessage.TryParse(buffer.AsSpan(0, received), out var response) && response!.Class == StunClass.SuccessResponse
                            && response.TransactionId.AsSpan().SequenceEqual(transactionId) && (response.XorMappedAddress ?? response.MappedAddress) is { } mapped)
                            return new StunBindingResult(local, mapped);
                    }
                }
                catch (OperationCanceledException) when (!deadline.IsCancellationRequested)
                {
                    rto = TimeSpan.FromTicks(Math.Min(rto.Ticks * 2, TimeSpan.FromMilliseconds(800).Ticks));
                }
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return null;
        }
        catch (SocketException)
        {
            // ICMP port unreachable (nothing listens there) surfaces as a failed receive: no answer.
            return null;
        }
    }
}
