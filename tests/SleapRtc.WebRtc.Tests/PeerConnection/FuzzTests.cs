using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using SleapRtc.WebRtc.PeerConnection;
using SleapRtc.WebRtc.Stun;
using Xunit;
using Xunit.Abstractions;

namespace SleapRtc.WebRtc.Tests.PeerConnection;

public class FuzzTests(ITestOutputHelper output)
{
    /// <summary>
    /// Mutated STUN and DTLS datagrams hit a live connection both from the authenticated peer address
    /// (through the peer's own ICE socket) and from a stranger; the channel must keep its data intact.
    /// </summary>
    [Fact]
    public async Task Mutated_stun_and_dtls_packets_neither_crash_nor_corrupt_a_live_channel()
    {
        const int PacketCount = 100_000;
        var factory = new RtcPeerConnectionFactory();
        await using var pair = await PeerPair.ConnectAsync(factory);
        var victim = pair.Offerer.IceAgent!;
        var attacker = pair.Answerer.IceAgent!;
        var victimEndPoint = attacker.SelectedRemoteEndPoint!;
        using var stranger = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        stranger.Bind(new IPEndPoint(IPAddress.Loopback, 0));

        var templates = BuildTemplates(victim.LocalUfrag, victim.LocalPassword, attacker.LocalUfrag);
        if (Environment.GetEnvironmentVariable("FUZZ_TEMPLATE") is { } only) templates = new[] { templates[int.Parse(only)] };
        var random = new Random(12345);
        var transfer = PeerPair.TransferAsync(pair.AnswererChannel, pair.OffererChannel, 2_000_000, 7);
        var stopwatch = Stopwatch.StartNew();
        var buffer = new byte[1500];
        for (var i = 0; i < PacketCount; i++)
        {
            var length = Mutate(templates[random.Next(templates.Length)], buffer, random);
            if ((i & 1) == 0) attacker.Send(buffer.AsSpan(0, length));
            else stranger.SendTo(buffer.AsSpan(0, length), SocketFlags.None, victimEndPoint);
            // Yield now and then so the receivers are not starved on a small machine.
            if ((i & 1023) == 0) await Task.Yield();
        }
        output.WriteLine($"{PacketCount} mutated packets sent in {stopwatch.ElapsedMilliseconds} ms");
        double rate;
        try
        {
            rate = await transfer.WaitAsync(PeerPair.Timeout);
        }
        catch (Exception ex)
        {
            output.WriteLine($"offerer error: {pair.Offerer.Error}");
            output.WriteLine($"answerer error: {pair.Answerer.Error}");
            output.WriteLine(ex.ToString());
            throw;
        }
        output.WriteLine($"2 MB transfer during the fuzz: {rate:F1} MB/s, intact");

        // The connection is still up and still carries ordered messages both ways.
        Assert.Equal(PeerConnectionState.Connected, pair.Offerer.State);
        Assert.Equal(PeerConnectionState.Connected, pair.Answerer.State);
        var echo = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        pair.AnswererChannel.MessageReceived += m => { if (m.IsText) echo.TrySetResult(m.Text!); };
        pair.OffererChannel.Send("still alive");
        Assert.Equal("still alive", await echo.Task.WaitAsync(PeerPair.Timeout));
    }

    private static byte[][] BuildTemplates(string victimUfrag, string victimPassword, string attackerUfrag)
    {
        var key = Encoding.UTF8.GetBytes(victimPassword);
        var check = new StunMessageBuilder(StunMethod.Binding, StunClass.Request, StunMessageBuilder.NewTransactionId())
            .AddUsername($"{victimUfrag}:{attackerUfrag}").AddPriority(1845501695).AddIceControlled(7)
            .AddMessageIntegrity(key).AddFingerprint().ToArray();
        var useCandidate = new StunMessageBuilder(StunMethod.Binding, StunClass.Request, StunMessageBuilder.NewTransactionId())
            .AddUsername($"{victimUfrag}:{attackerUfrag}").AddPriority(1).AddIceControlling(ulong.MaxValue).AddUseCandidate()
            .AddMessageIntegrity(key).AddFingerprint().ToArray();
        var response = new StunMessageBuilder(StunMethod.Binding, StunClass.SuccessResponse, StunMessageBuilder.NewTransactionId())
            .AddXorMappedAddress(new IPEndPoint(IPAddress.Loopback, 1234)).AddMessageIntegrity(key).AddFingerprint().ToArray();
        var roleConflict = new StunMessageBuilder(StunMethod.Binding, StunClass.ErrorResponse, StunMessageBuilder.NewTransactionId())
            .AddErrorCode(487, "Role Conflict").AddMessageIntegrity(key).AddFingerprint().ToArray();
        return new[]
        {
            check, useCandidate, response, roleConflict,
            DtlsRecord(23, epoch: 1, 1100), // application data of the current epoch (bad MAC)
            DtlsRecord(22, epoch: 0, 200, handshakeType: 1), // a fresh ClientHello-looking record
            DtlsRecord(22, epoch: 1, 60, handshakeType: 20), // encrypted Finished-looking record
            DtlsRecord(21, epoch: 0, 2, alert: true), // plaintext fatal alert
            DtlsRecord(21, epoch: 1, 26), // encrypted alert (bad MAC)
            DtlsRecord(20, epoch: 0, 1), // ChangeCipherSpec
        };
    }

    private static byte[] DtlsRecord(byte contentType, ushort epoch, int bodyLength, byte handshakeType = 0, bool alert = false)
    {
        var record = new byte[13 + bodyLength];
        record[0] = contentType;
        record[1] = 0xFE;
        record[2] = 0xFD;
        BinaryPrimitives.WriteUInt16BigEndian(record.AsSpan(3), epoch);
        record[10] = 5; // sequence number
        BinaryPrimitives.WriteUInt16BigEndian(record.AsSpan(11), (ushort)bodyLength);
        new Random(contentType * 31 + epoch).NextBytes(record.AsSpan(13));
        if (handshakeType != 0) record[13] = handshakeType;
        if (alert)
        {
            record[13] = 2; // fatal
            record[14] = 40; // handshake_failure
        }
        return record;
    }

    /// <summary>Bit flips, byte overwrites, truncation, extension and length-field damage.</summary>
    private static int Mutate(byte[] template, byte[] buffer, Random random)
    {
        var length = template.Length;
        template.CopyTo(buffer, 0);
        switch (random.Next(6))
        {
            case 0:
                for (var i = random.Next(1, 4); i > 0; i--) buffer[random.Next(length)] ^= (byte)(1 << random.Next(8));
                break;
            case 1:
                for (var i = random.Next(1, 8); i > 0; i--) buffer[random.Next(length)] = (byte)random.Next(256);
                break;
            case 2:
                length = random.Next(1, length);
                break;
            case 3:
                var extra = random.Next(1, Math.Min(200, buffer.Length - length));
                random.NextBytes(buffer.AsSpan(length, extra));
                length += extra;
                break;
            case 4:
                // Length fields: STUN message length (bytes 2-3) or DTLS record length (11-12).
                var at = buffer[0] < 4 ? 2 : 11;
                BinaryPrimitives.WriteUInt16BigEndian(buffer.AsSpan(at), (ushort)random.Next(65536));
                break;
            default:
                // Keep the packet in its demux range but scramble the rest.
                random.NextBytes(buffer.AsSpan(1, length - 1));
                break;
        }
        return length;
    }
}
