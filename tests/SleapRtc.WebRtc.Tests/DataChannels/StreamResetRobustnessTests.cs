using System.Buffers.Binary;
using System.Collections.Concurrent;
using SleapRtc.WebRtc.Sctp;
using SleapRtc.WebRtc.Tests.Sctp;
using Xunit;

namespace SleapRtc.WebRtc.Tests.DataChannels;

/// <summary>
/// Closing a channel resets its streams both ways (RFC 8831 §6.7, RFC 6525). Some peers (aiortc) send their reset
/// request once, ahead of their queued DATA, never retransmit it, and take any response as final. These tests drop
/// packets so that only a peer behaving well in those two situations closes the channel.
/// </summary>
public class StreamResetRobustnessTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);
    private const byte ReConfigChunk = 130;
    private const ushort OutgoingResetRequest = 13;
    private const ushort ReconfigResponse = 16;

    private static SctpAssociationOptions Options(bool client) => new() { IsDtlsClient = client };

    [Fact]
    public async Task A_lost_reset_response_is_sent_again_with_our_own_reset_request()
    {
        await using var pair = new SctpTestPair(Options(true), Options(false));
        var (atA, atB) = await pair.OpenChannelAsync("close-me", Timeout);
        var fromB = new ConcurrentQueue<List<ushort>>();
        pair.BToA.Tap = packet => { if (ReconfigParameters(packet) is { } parameters) fromB.Enqueue(parameters); };
        // B's answer to A's reset request is lost whenever it travels alone.
        pair.BToA.DropWhen((_, packet) => ReconfigParameters(packet) is [ReconfigResponse]);

        var closedAtA = Closed(atA);
        var closedAtB = Closed(atB);
        using var cts = new CancellationTokenSource(Timeout);
        await atA.CloseAsync(cts.Token);
        await Task.WhenAll(closedAtA, closedAtB).WaitAsync(cts.Token);

        Assert.Contains(fromB, parameters => parameters.SequenceEqual(new ushort[] { ReconfigResponse }));
        Assert.Contains(fromB, parameters => parameters.Contains(OutgoingResetRequest) && parameters.Contains(ReconfigResponse));
        Assert.Equal(SctpAssociationState.Established, pair.A.State);
    }

    [Fact]
    public async Task A_reset_request_that_overtakes_its_data_is_performed_when_the_data_arrives_without_a_retry()
    {
        await using var pair = new SctpTestPair(Options(true), Options(false));
        var (atA, atB) = await pair.OpenChannelAsync("close-me", Timeout);
        var received = new ConcurrentQueue<string?>();
        atB.MessageReceived += message => received.Enqueue(message.Text);

        // A's last message is lost once (so B sees the reset request naming a TSN it lacks), and A's reset request
        // is delivered only once, like a peer that never retransmits it.
        var dataDropped = 0;
        var requestsSeen = 0;
        pair.AToB.DropWhen((_, packet) =>
        {
            if (IsDataWithText(packet, "last words") && Interlocked.Exchange(ref dataDropped, 1) == 0) return true;
            return ReconfigParameters(packet) is { } parameters && parameters.Contains(OutgoingResetRequest) && Interlocked.Increment(ref requestsSeen) > 1;
        });

        var closedAtA = Closed(atA);
        var closedAtB = Closed(atB);
        atA.Send("last words");
        using var cts = new CancellationTokenSource(Timeout);
        await atA.CloseAsync(cts.Token);
        await Task.WhenAll(closedAtA, closedAtB).WaitAsync(cts.Token);

        Assert.Equal(new[] { "last words" }, received.ToArray());
        Assert.Equal(1, dataDropped);
        Assert.Equal(SctpAssociationState.Established, pair.B.State);
    }

    private static Task Closed(IDataChannel channel)
    {
        var closed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        channel.Closed += _ => closed.TrySetResult();
        if (channel.State == DataChannelState.Closed) closed.TrySetResult();
        return closed.Task;
    }

    /// <summary>The parameter types of the first RE-CONFIG chunk in an SCTP packet, or null when it has none.</summary>
    private static List<ushort>? ReconfigParameters(ReadOnlySpan<byte> packet)
    {
        for (int offset = 12; offset + 4 <= packet.Length;)
        {
            int length = BinaryPrimitives.ReadUInt16BigEndian(packet[(offset + 2)..]);
            if (length < 4 || offset + length > packet.Length) return null;
            if (packet[offset] == ReConfigChunk)
            {
                var types = new List<ushort>();
                var value = packet.Slice(offset + 4, length - 4);
                for (int p = 0; p + 4 <= value.Length;)
                {
                    types.Add(BinaryPrimitives.ReadUInt16BigEndian(value[p..]));
                    int parameterLength = BinaryPrimitives.ReadUInt16BigEndian(value[(p + 2)..]);
                    if (parameterLength < 4) break;
                    p += (parameterLength + 3) & ~3;
                }
                return types;
            }
            offset += (length + 3) & ~3;
        }
        return null;
    }

    private static bool IsDataWithText(ReadOnlySpan<byte> packet, string text)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(text);
        return packet.Length > 12 && packet[12] == 0 && packet.IndexOf(bytes) >= 0;
    }
}
