using System.Net.WebSockets;
using System.Text;
using SleapRtc.Signaling.Store;

namespace SleapRtc.Signaling.Cluster;

/// <summary>
/// A peer connected to another instance, as this instance's registry shows it: sending publishes the frame on the owning
/// instance's channel, which delivers it only if that connection still holds the peer id in the room the sender checked
/// (<see cref="BusEnvelope"/>). Sends are fire-and-forget, like queuing a frame for a local socket; false only when Redis
/// is unreachable.
/// </summary>
internal sealed class RemotePeerLink(RedisBackplane bus, string instanceId, string linkId, string peerId, string roomId, string remoteAddress) : IPeerLink
{
    public string InstanceId { get; } = instanceId;
    public string LinkId { get; } = linkId;
    public string RemoteAddress { get; } = remoteAddress;

    public bool TrySend(string json) => TrySendUtf8(Encoding.UTF8.GetBytes(json));

    public bool TrySendUtf8(byte[] utf8Json) => bus.Publish(bus.InstanceChannel(InstanceId), BusEnvelope.Message(peerId, roomId, LinkId, "", "", "", utf8Json));

    /// <summary>A relay on behalf of <paramref name="senderPeerId"/>: if the owning instance cannot deliver it (the target's
    /// queue is full, or it just left), it answers the sender DELIVERY_FAILED in reply to <paramref name="type"/>, as a
    /// single server does at once.</summary>
    public bool TrySendUtf8From(byte[] utf8Json, IPeerLink sender, string senderPeerId, string type) =>
        bus.Publish(bus.InstanceChannel(InstanceId), BusEnvelope.Message(peerId, roomId, LinkId, senderPeerId, bus.LinkIdOf(sender), type, utf8Json));

    public void Close(WebSocketCloseStatus status, string description) =>
        bus.Publish(bus.InstanceChannel(InstanceId), BusEnvelope.Close(peerId, LinkId, status, description));
}

/// <summary>
/// What travels on an instance's channel: <c>M peer\nroom\nlink\nsender\nsender link\ntype\n</c> + the frame (a message
/// for a peer; the sender fields are empty for the server's own notices), or
/// <c>C peer\nlink\nstatus\ndescription</c> (close that connection: the peer was deleted or re-registered elsewhere).
/// Peer ids, room ids and link ids never contain a newline (the server only accepts them from JSON strings it checked,
/// and a newline in one would only make the envelope undeliverable).
/// </summary>
internal static class BusEnvelope
{
    private static readonly UTF8Encoding Utf8 = new(false);

    public static byte[] Message(string peerId, string roomId, string linkId, string senderPeerId, string senderLinkId, string type, byte[] frame)
    {
        var head = Utf8.GetBytes("M" + peerId + "\n" + roomId + "\n" + linkId + "\n" + senderPeerId + "\n" + senderLinkId + "\n" + type + "\n");
        var payload = new byte[head.Length + frame.Length];
        Buffer.BlockCopy(head, 0, payload, 0, head.Length);
        Buffer.BlockCopy(frame, 0, payload, head.Length, frame.Length);
        return payload;
    }

    public static byte[] Close(string peerId, string linkId, WebSocketCloseStatus status, string description) =>
        Utf8.GetBytes("C" + peerId + "\n" + linkId + "\n" + ((int)status).ToString(System.Globalization.CultureInfo.InvariantCulture) + "\n" + description);

    /// <summary>Splits an envelope; false when it is not one (nothing else publishes on the channel, but never trust a bus).</summary>
    public static bool TryParse(byte[] payload, out char kind, out string[] fields, out int frameOffset)
    {
        kind = payload.Length > 0 ? (char)payload[0] : '\0';
        fields = [];
        frameOffset = 0;
        var wanted = kind switch { 'M' => 6, 'C' => 3, _ => 0 };
        if (wanted == 0) return false;
        var parts = new List<string>(4);
        var start = 1;
        for (var i = 1; i < payload.Length && parts.Count < wanted; i++)
        {
            if (payload[i] != (byte)'\n') continue;
            parts.Add(Utf8.GetString(payload, start, i - start));
            start = i + 1;
        }
        if (parts.Count < wanted) return false;
        if (kind == 'C') parts.Add(Utf8.GetString(payload, start, payload.Length - start));
        fields = parts.ToArray();
        frameOffset = start;
        return true;
    }
}
