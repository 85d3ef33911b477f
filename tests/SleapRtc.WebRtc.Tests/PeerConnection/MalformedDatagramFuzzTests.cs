using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using SleapRtc.WebRtc.PeerConnection;
using SleapRtc.WebRtc.Sctp;
using SleapRtc.WebRtc.Stun;
using Xunit;
using Xunit.Abstractions;

namespace SleapRtc.WebRtc.Tests.PeerConnection;

/// <summary>
/// Issue 11's peer fuzz: malformed STUN, DTLS and SCTP datagrams against a live session of ours on loopback,
/// during the handshake and after it. STUN and DTLS arrive through a relay from the very address each victim
/// authenticated (<see cref="InjectingRelay"/>); SCTP travels inside the DTLS session, sent by the authenticated
/// peer itself, so it reaches the association's parser. Nothing may crash or throw out of the stack, memory must
/// stay bounded (this class runs alone so the process-wide figures are ours), and the data channel must still
/// carry data both ways afterwards.
/// </summary>
[Collection(ProcessWideCountingCollection.Name)]
public class MalformedDatagramFuzzTests(ITestOutputHelper output)
{
    private const int PerProtocolAfterHandshake = 1500;
    private const long ManagedGrowthBound = 16L << 20;

    internal enum Damage { Truncated, BitFlipped, Random, Oversized, WrongLength, BadChecksum, GarbageBody, WrongTag }

    private sealed class Tally
    {
        private readonly Dictionary<string, int> _counts = new();
        public int Total { get; private set; }

        public void Add(string protocol, Damage damage)
        {
            var key = $"{protocol}/{damage}";
            _counts[key] = _counts.GetValueOrDefault(key) + 1;
            Total++;
        }

        public int Of(string protocol) => _counts.Where(c => c.Key.StartsWith(protocol + "/", StringComparison.Ordinal)).Sum(c => c.Value);

        public override string ToString() => string.Join(", ", _counts.OrderBy(c => c.Key, StringComparer.Ordinal).Select(c => $"{c.Key} {c.Value}"));
    }

    [Fact]
    public async Task Malformed_stun_dtls_and_sctp_during_and_after_the_handshake_leave_the_session_working()
    {
        var random = new Random(20261202);
        var factory = new RtcPeerConnectionFactory();
        using var relay = new InjectingRelay();
        await using var offerer = factory.CreateConnection(PeerPair.LoopbackOptions);
        await using var answerer = factory.CreateConnection(PeerPair.LoopbackOptions);
        using var cts = new CancellationTokenSource(PeerPair.Timeout);
        var remoteChannel = new TaskCompletionSource<IDataChannel>(TaskCreationOptions.RunContinuationsAsynchronously);
        answerer.DataChannelOpened += channel => remoteChannel.TrySetResult(channel);
        var unobserved = 0;
        EventHandler<UnobservedTaskExceptionEventArgs> onUnobserved = (_, e) => { Interlocked.Increment(ref unobserved); output.WriteLine($"unobserved: {e.Exception}"); };
        TaskScheduler.UnobservedTaskException += onUnobserved;
        try
        {
            // During the handshake: ICE checks, the DTLS handshake and SCTP's INIT run while garbage arrives.
            var offer = relay.RewriteOffer(await offerer.CreateOfferAsync(cts.Token));
            var duringHandshake = new Tally();
            using var stopBlasting = new CancellationTokenSource();
            var blaster = Task.Run(() => BlastDuringHandshakeAsync(relay, offerer, duringHandshake, stopBlasting.Token));
            var answer = await answerer.AcceptOfferAsync(offer, cts.Token);
            await offerer.AcceptAnswerAsync(relay.RewriteAnswer(answer), cts.Token);
            var offererChannel = await offerer.OpenDataChannelAsync("fuzzed", cts.Token);
            var answererChannel = await remoteChannel.Task.WaitAsync(cts.Token);
            stopBlasting.Cancel();
            await blaster;
            output.WriteLine($"during the handshake: {duringHandshake.Total} datagrams ({duringHandshake})");

            // After the handshake, with a transfer running.
            var victimAssociation = await offerer.Association;
            var statisticsBefore = victimAssociation.GetStatistics();
            var managedBefore = GC.GetTotalMemory(forceFullCollection: true);
            var rssBefore = Environment.WorkingSet;
            long peakRss = rssBefore;
            var transfer = PeerPair.TransferAsync(answererChannel, offererChannel, 2_000_000, 11);
            var afterHandshake = new Tally();
            var stopwatch = Stopwatch.StartNew();
            var stunTemplates = StunTemplates(offerer.IceAgent!.LocalUfrag, offerer.IceAgent.LocalPassword, answerer.IceAgent!.LocalUfrag);
            var tag = victimAssociation.LocalVerificationTag;
            var peerDtls = answerer.DtlsSession!;
            for (var i = 0; i < PerProtocolAfterHandshake; i++)
            {
                var damage = (Damage)(i % 7);
                var stun = MalformedStun(stunTemplates[random.Next(stunTemplates.Length)], damage, random);
                if (stun is not null)
                {
                    relay.InjectToOfferer(stun);
                    relay.InjectToAnswerer(stun);
                    afterHandshake.Add("STUN", damage);
                }
                relay.InjectToOfferer(MalformedDtls(damage, random));
                relay.InjectToAnswerer(MalformedDtls(damage, random));
                afterHandshake.Add("DTLS", damage);
                var sctpDamage = (Damage)(i % 8);
                peerDtls.Send(MalformedSctp(tag, sctpDamage, random));
                afterHandshake.Add("SCTP", sctpDamage);
                if ((i & 31) == 31)
                {
                    peakRss = Math.Max(peakRss, Environment.WorkingSet);
                    await Task.Delay(1);
                }
            }
            output.WriteLine($"after the handshake: {afterHandshake.Total} datagrams in {stopwatch.ElapsedMilliseconds} ms ({afterHandshake})");
            double rate;
            try { rate = await transfer.WaitAsync(PeerPair.Timeout); }
            catch (Exception)
            {
                output.WriteLine($"transfer stalled: offerer {offerer.State} {offerer.Error}; answerer {answerer.State} {answerer.Error}");
                throw;
            }
            output.WriteLine($"2 MB transfer during the fuzz: {rate:F1} MB/s, SHA-256 intact");

            // Bounded memory: after a full collection the managed heap is back near where it was.
            peakRss = Math.Max(peakRss, Environment.WorkingSet);
            var managedAfter = GC.GetTotalMemory(forceFullCollection: true);
            output.WriteLine($"managed heap {managedBefore / 1e6:F1} -> {managedAfter / 1e6:F1} MB; RSS {rssBefore / 1e6:F0} MB, peak {peakRss / 1e6:F0} MB");
            Assert.InRange(managedAfter - managedBefore, long.MinValue, ManagedGrowthBound);

            // The fuzz reached the association's parser: checksum failures and discarded packets were counted.
            var statistics = victimAssociation.GetStatistics();
            output.WriteLine($"victim SCTP: checksum errors +{statistics.ChecksumErrors - statisticsBefore.ChecksumErrors}, discarded +{statistics.PacketsDiscarded - statisticsBefore.PacketsDiscarded}, internal errors {statistics.InternalErrors}");
            Assert.True(statistics.ChecksumErrors - statisticsBefore.ChecksumErrors >= PerProtocolAfterHandshake / 8);
            Assert.True(statistics.PacketsDiscarded > statisticsBefore.PacketsDiscarded);
            Assert.Equal(0, statistics.InternalErrors);

            Assert.True(duringHandshake.Total > 0);
            Assert.True(afterHandshake.Of("SCTP") >= 1000 && afterHandshake.Of("DTLS") >= 1000 && afterHandshake.Of("STUN") >= 1000);
            output.WriteLine($"offerer {offerer.State} {offerer.Error?.Message}; answerer {answerer.State} {answerer.Error?.Message}");
            Assert.Equal(PeerConnectionState.Connected, offerer.State);
            Assert.Equal(PeerConnectionState.Connected, answerer.State);
            Assert.Equal(SctpAssociationState.Established, victimAssociation.State);

            // The real session still carries data both ways.
            Assert.Equal("ping", await RoundTripAsync(offererChannel, answererChannel, "ping"));
            Assert.Equal("pong", await RoundTripAsync(answererChannel, offererChannel, "pong"));
            output.WriteLine($"1 MB after the fuzz: {await PeerPair.TransferAsync(offererChannel, answererChannel, 1_000_000, 12):F1} MB/s, intact");
            GC.Collect();
            GC.WaitForPendingFinalizers();
            Assert.Equal(0, Volatile.Read(ref unobserved));
        }
        finally
        {
            TaskScheduler.UnobservedTaskException -= onUnobserved;
        }
    }

    private static async Task<string> RoundTripAsync(IDataChannel from, IDataChannel to, string text)
    {
        var received = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        void OnMessage(DataChannelMessage message)
        {
            if (message.IsText) received.TrySetResult(message.Text!);
        }
        to.MessageReceived += OnMessage;
        try
        {
            from.Send(text);
            return await received.Task.WaitAsync(PeerPair.Timeout);
        }
        finally
        {
            to.MessageReceived -= OnMessage;
        }
    }

    /// <summary>Until stopped: malformed STUN, DTLS and raw (unencrypted) SCTP to both peers, from the relay.</summary>
    private static async Task BlastDuringHandshakeAsync(InjectingRelay relay, RtcPeerConnection offerer, Tally tally, CancellationToken stop)
    {
        var random = new Random(7);
        var templates = StunTemplates(offerer.IceAgent!.LocalUfrag, offerer.IceAgent.LocalPassword, "peer");
        for (var i = 0; !stop.IsCancellationRequested; i++)
        {
            var damage = (Damage)(i % 7);
            var stun = MalformedStun(templates[random.Next(templates.Length)], damage, random);
            if (stun is not null)
            {
                relay.InjectToOfferer(stun);
                relay.InjectToAnswerer(stun);
                tally.Add("STUN", damage);
            }
            var dtls = MalformedDtls(damage, random);
            relay.InjectToOfferer(dtls);
            relay.InjectToAnswerer(dtls);
            tally.Add("DTLS", damage);
            // SCTP outside DTLS (first byte 0x13): RFC 7983 demultiplexing must drop it.
            var sctp = MalformedSctp((uint)random.Next(), (Damage)(i % 8), random);
            relay.InjectToOfferer(sctp);
            relay.InjectToAnswerer(sctp);
            tally.Add("SCTP", (Damage)(i % 8));
            if ((i & 15) == 15) await Task.Delay(1);
        }
    }

    // ---- STUN ----

    private static byte[][] StunTemplates(string victimUfrag, string victimPassword, string peerUfrag)
    {
        var key = Encoding.UTF8.GetBytes(victimPassword);
        return new[]
        {
            new StunMessageBuilder(StunMethod.Binding, StunClass.Request, StunMessageBuilder.NewTransactionId())
                .AddUsername($"{victimUfrag}:{peerUfrag}").AddPriority(1845501695).AddIceControlled(7).AddMessageIntegrity(key).AddFingerprint().ToArray(),
            new StunMessageBuilder(StunMethod.Binding, StunClass.Request, StunMessageBuilder.NewTransactionId())
                .AddUsername($"{victimUfrag}:{peerUfrag}").AddPriority(1).AddIceControlling(ulong.MaxValue).AddUseCandidate().AddMessageIntegrity(key).AddFingerprint().ToArray(),
            new StunMessageBuilder(StunMethod.Binding, StunClass.SuccessResponse, StunMessageBuilder.NewTransactionId())
                .AddXorMappedAddress(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 1234)).AddMessageIntegrity(key).AddFingerprint().ToArray(),
            new StunMessageBuilder(StunMethod.Binding, StunClass.ErrorResponse, StunMessageBuilder.NewTransactionId())
                .AddErrorCode(487, "Role Conflict").AddMessageIntegrity(key).AddFingerprint().ToArray(),
        };
    }

    /// <summary>A damaged STUN datagram (every template ends MESSAGE-INTEGRITY, FINGERPRINT).</summary>
    internal static byte[]? MalformedStun(byte[] template, Damage damage, Random random)
    {
        var packet = (byte[])template.Clone();
        switch (damage)
        {
            case Damage.Truncated:
                return packet[..random.Next(1, packet.Length)];
            case Damage.BitFlipped:
                FlipBits(packet, random, from: 0);
                return packet;
            case Damage.Random:
                var noise = new byte[random.Next(1, 1200)];
                random.NextBytes(noise);
                noise[0] = (byte)random.Next(4); // inside STUN's demultiplexing range
                return noise;
            case Damage.Oversized:
                return Oversized(random, firstByte: 0, lengthAt: 2, headerLength: 20);
            case Damage.WrongLength:
                BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(2), random.Next(2) == 0
                    ? (ushort)random.Next(65536)
                    : (ushort)(packet.Length - 20 + (random.Next(2) == 0 ? 4 : -4)));
                return packet;
            case Damage.BadChecksum:
                if (random.Next(2) == 0)
                {
                    packet[^1] ^= (byte)(1 << random.Next(8)); // FINGERPRINT
                }
                else
                {
                    // MESSAGE-INTEGRITY damaged, FINGERPRINT recomputed so only the HMAC is wrong.
                    packet[packet.Length - 8 - 1 - random.Next(20)] ^= 0x01;
                    var fingerprintAt = packet.Length - 8;
                    BinaryPrimitives.WriteUInt32BigEndian(packet.AsSpan(fingerprintAt + 4), StunMessage.FingerprintOf(packet.AsSpan(0, fingerprintAt), packet.Length - 20));
                }
                return packet;
            case Damage.GarbageBody:
                var body = new byte[4 * random.Next(0, 64)];
                random.NextBytes(body);
                var garbage = new byte[20 + body.Length];
                template.AsSpan(0, 20).CopyTo(garbage);
                BinaryPrimitives.WriteUInt16BigEndian(garbage.AsSpan(2), (ushort)body.Length);
                body.CopyTo(garbage, 20);
                return garbage;
            default:
                return null;
        }
    }

    // ---- DTLS ----

    /// <summary>A damaged DTLS 1.2 datagram: records of every content type, epoch 0 and 1.</summary>
    internal static byte[] MalformedDtls(Damage damage, Random random)
    {
        var contentType = (byte)random.Next(20, 24);
        var epoch = (ushort)random.Next(2);
        var record = DtlsRecord(contentType, epoch, random.Next(1, 600), random);
        switch (damage)
        {
            case Damage.Truncated:
                return record[..random.Next(1, record.Length)];
            case Damage.BitFlipped:
                FlipBits(record, random, from: 0);
                record[0] = (byte)Math.Clamp((int)record[0], 20, 63);
                return record;
            case Damage.Random:
                var noise = new byte[random.Next(1, 1500)];
                random.NextBytes(noise);
                noise[0] = (byte)random.Next(20, 64); // inside DTLS's demultiplexing range
                return noise;
            case Damage.Oversized:
                return Oversized(random, firstByte: 23, lengthAt: 11, headerLength: 13);
            case Damage.WrongLength:
                BinaryPrimitives.WriteUInt16BigEndian(record.AsSpan(11), (ushort)random.Next(65536));
                return record;
            case Damage.BadChecksum:
                // Well framed application data of the current epoch whose AEAD tag cannot verify.
                return DtlsRecord(23, 1, random.Next(25, 1100), random);
            default:
                // A well-framed handshake record in the clear (epoch 0, what a retransmitted flight looks like) with a garbage body.
                var handshake = DtlsRecord(22, 0, random.Next(12, 600), random);
                handshake[13] = (byte)random.Next(0, 25); // a handshake message type
                return handshake;
        }
    }

    private static byte[] DtlsRecord(byte contentType, ushort epoch, int bodyLength, Random random)
    {
        var record = new byte[13 + bodyLength];
        random.NextBytes(record);
        record[0] = contentType;
        record[1] = 0xFE;
        record[2] = 0xFD;
        BinaryPrimitives.WriteUInt16BigEndian(record.AsSpan(3), epoch);
        BinaryPrimitives.WriteUInt16BigEndian(record.AsSpan(11), (ushort)bodyLength);
        return record;
    }

    // ---- SCTP ----

    // Chunk types whose forging by the authenticated peer cannot legitimately end the association or inject user
    // data (ABORT, the SHUTDOWN family and DATA can: DTLS, not SCTP, authenticates them).
    private static readonly byte[] HarmlessChunkTypes = { 1, 2, 3, 4, 5, 9, 10, 11, 13, 15, 63, 64, 127, 128, 130, 132, 191, 192, 193, 255 };

    /// <summary>A damaged SCTP packet for the victim's association (ports 5000, the victim's tag unless damaged).</summary>
    internal static byte[] MalformedSctp(uint tag, Damage damage, Random random)
    {
        switch (damage)
        {
            case Damage.Truncated:
                var whole = SctpPacket(tag, random, HarmlessChunk(random));
                return whole[..random.Next(1, whole.Length)];
            case Damage.BitFlipped:
                // Flipped after the checksum was stamped: even an ABORT must be dropped.
                var flipped = SctpPacket(tag, random, Chunk(random.Next(2) == 0 ? (byte)6 : HarmlessType(random), 0, random.Next(0, 64), random));
                FlipBits(flipped, random, from: 0);
                Assert.False(Crc32c.VerifyPacket(flipped)); // CRC32c catches every flip of up to four bits here
                return flipped;
            case Damage.Random:
                var noise = new byte[random.Next(1, 1164)];
                random.NextBytes(noise);
                return noise;
            case Damage.Oversized:
                // The largest packet the path carries, one chunk claiming far more than that.
                var big = Chunk(HarmlessType(random), 0, 1163 - 12 - 4, random);
                BinaryPrimitives.WriteUInt16BigEndian(big.AsSpan(2), 0xFFFF);
                return SctpPacket(tag, random, big);
            case Damage.WrongLength:
                var chunk = HarmlessChunk(random);
                ushort[] lengths = { 0, 1, 2, 3, (ushort)(chunk.Length + 4), 0xFFFF, (ushort)random.Next(65536) };
                BinaryPrimitives.WriteUInt16BigEndian(chunk.AsSpan(2), lengths[random.Next(lengths.Length)]);
                return SctpPacket(tag, random, chunk, HarmlessChunk(random));
            case Damage.BadChecksum:
                // Chunks that would matter (ABORT, SHUTDOWN, DATA) with a checksum that does not verify.
                byte[] types = { 0, 6, 7, 8, 14 };
                var packet = SctpPacket(tag, random, Chunk(types[random.Next(types.Length)], (byte)random.Next(2), random.Next(4, 64), random));
                packet[8] ^= (byte)(1 << random.Next(8));
                return packet;
            case Damage.WrongTag:
                // A well-formed ABORT with a valid checksum, but another association's tag (reflected or not).
                var abort = Chunk(6, (byte)random.Next(2), 4, random);
                return SctpPacket(tag ^ (uint)random.Next(1, int.MaxValue), random, abort);
            default:
                // Right ports, tag and checksum; one to four chunks of harmless types with garbage bodies.
                var chunks = new byte[random.Next(1, 5)][];
                for (var i = 0; i < chunks.Length; i++) chunks[i] = HarmlessChunk(random);
                return SctpPacket(tag, random, chunks);
        }
    }

    private static byte HarmlessType(Random random) => HarmlessChunkTypes[random.Next(HarmlessChunkTypes.Length)];

    private static byte[] HarmlessChunk(Random random) => Chunk(HarmlessType(random), (byte)random.Next(256), random.Next(0, 200), random);

    private static byte[] Chunk(byte type, byte flags, int valueLength, Random random)
    {
        var chunk = new byte[4 + ((valueLength + 3) & ~3)];
        random.NextBytes(chunk.AsSpan(4, valueLength));
        chunk[0] = type;
        chunk[1] = flags;
        BinaryPrimitives.WriteUInt16BigEndian(chunk.AsSpan(2), (ushort)(4 + valueLength));
        return chunk;
    }

    private static byte[] SctpPacket(uint tag, Random random, params byte[][] chunks)
    {
        var length = Math.Min(1163, 12 + chunks.Sum(c => c.Length));
        var packet = new byte[length];
        BinaryPrimitives.WriteUInt16BigEndian(packet, 5000);
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(2), 5000);
        BinaryPrimitives.WriteUInt32BigEndian(packet.AsSpan(4), tag);
        var offset = 12;
        foreach (var chunk in chunks)
        {
            var take = Math.Min(chunk.Length, length - offset);
            chunk.AsSpan(0, take).CopyTo(packet.AsSpan(offset));
            offset += take;
        }
        Crc32c.StampPacket(packet);
        return packet;
    }

    // ---- shared ----

    /// <summary>One to four distinct bits (two flips of one bit would cancel out and leave a valid packet).</summary>
    private static void FlipBits(byte[] packet, Random random, int from)
    {
        var bits = new HashSet<int>();
        for (var count = random.Next(1, 5); bits.Count < count;) bits.Add(random.Next(from * 8, packet.Length * 8));
        foreach (var bit in bits) packet[bit / 8] ^= (byte)(1 << (bit % 8));
    }

    /// <summary>2 KB to 64 KB, far beyond any MTU, with a plausible header whose length field matches.</summary>
    private static byte[] Oversized(Random random, byte firstByte, int lengthAt, int headerLength)
    {
        var packet = new byte[random.Next(2000, 65000)];
        random.NextBytes(packet);
        packet[0] = firstByte;
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(lengthAt), (ushort)Math.Min(65535, packet.Length - headerLength));
        if (headerLength == 20) BinaryPrimitives.WriteUInt32BigEndian(packet.AsSpan(4), StunMessage.MagicCookie);
        return packet;
    }
}
