using System.Buffers.Binary;
using System.Collections.Concurrent;
using SleapRtc.WebRtc.Sctp;
using Xunit;
using Xunit.Abstractions;

namespace SleapRtc.WebRtc.Tests.Sctp;

/// <summary>
/// Mutation fuzzing of the packet parser and state machine with real packets as seeds. SCTP cannot tell a
/// forged DATA/SACK/ABORT that carries the right verification tag and checksum from a real one (DTLS
/// authenticates those), so the transfer-integrity phase re-stamps the checksum only on mutants without
/// such chunks; the robustness phase re-stamps everything and only requires that nothing throws.
/// </summary>
public class SctpFuzzTests
{
    private readonly ITestOutputHelper _output;

    public SctpFuzzTests(ITestOutputHelper output) => _output = output;

    private static byte[] Mutate(byte[] seed, Random random)
    {
        var packet = seed.ToList();
        int operations = 1 + random.Next(4);
        for (int op = 0; op < operations; op++)
        {
            int kind = random.Next(8);
            int at = packet.Count > 12 ? 12 + random.Next(packet.Count - 12) : random.Next(Math.Max(1, packet.Count));
            switch (kind)
            {
                case 0 when packet.Count > 0:
                    packet[at % packet.Count] ^= (byte)(1 << random.Next(8));
                    break;
                case 1 when packet.Count > 0:
                    packet[at % packet.Count] = (byte)random.Next(256);
                    break;
                case 2 when packet.Count > 13:
                    packet.RemoveRange(at % packet.Count, packet.Count - at % packet.Count);
                    break;
                case 3:
                    for (int i = random.Next(1, 64); i > 0; i--) packet.Add((byte)random.Next(256));
                    break;
                case 4 when packet.Count >= 16:
                    // A chunk length (or any 16-bit field) set to an extreme.
                    int field = 14 + 4 * random.Next((packet.Count - 14) / 4);
                    ushort value = random.Next(3) switch { 0 => 0, 1 => 0xFFFF, _ => (ushort)random.Next(65536) };
                    if (field + 1 < packet.Count) { packet[field] = (byte)(value >> 8); packet[field + 1] = (byte)value; }
                    break;
                case 5 when packet.Count > 12:
                    packet[12] = (byte)random.Next(256); // first chunk type
                    break;
                case 6 when packet.Count > 16:
                    int start = 12 + random.Next(packet.Count - 12);
                    int length = Math.Min(random.Next(4, 64), packet.Count - start);
                    packet.InsertRange(start, packet.GetRange(start, length));
                    break;
                default:
                    if (packet.Count > 20) packet[16 + random.Next(4)] = (byte)random.Next(256); // TSN / tag bytes
                    break;
            }
        }
        return packet.ToArray();
    }

    private static bool CarriesUnauthenticatableChunk(byte[] packet)
    {
        int offset = 12;
        while (offset + 4 <= packet.Length)
        {
            byte type = packet[offset];
            if (type is 0 or 3 or 6 or 7 or 8 or 11 or 14 or 130 or 192) return true;
            int length = BinaryPrimitives.ReadUInt16BigEndian(packet.AsSpan(offset + 2));
            if (length < 4) return true;
            offset += (length + 3) & ~3;
        }
        return false;
    }

    private static async Task<(SctpTestPair Pair, IDataChannel AtA, IDataChannel AtB, ConcurrentQueue<byte[]> Seeds)> NewPairAsync()
    {
        var seeds = new ConcurrentQueue<byte[]>();
        var options = new SctpAssociationOptions { HeartbeatInterval = TimeSpan.FromMilliseconds(20), RemoteMaxMessageSize = 262144 };
        var pair = new SctpTestPair(new SctpAssociationOptions { IsDtlsClient = true, HeartbeatInterval = options.HeartbeatInterval, RemoteMaxMessageSize = 262144 }, options);
        pair.AToB.Tap = seeds.Enqueue;
        var (atA, atB) = await pair.OpenChannelAsync("fuzz", TimeSpan.FromSeconds(10));
        return (pair, atA, atB, seeds);
    }

    [Fact]
    public async Task HundredThousandMutatedPackets_NeverThrow_AndNeverCorruptALiveTransfer()
    {
        var random = new Random(20261123);
        var watch = System.Diagnostics.Stopwatch.StartNew();

        // Seeds: handshake, DCEP, DATA of several shapes, SACKs, heartbeats and a stream reset.
        var (seedPair, seedA, seedB, seeds) = await NewPairAsync();
        seedB.MessageReceived += _ => { };
        seedA.Send("text");
        seedA.Send(new byte[3000]);
        seedA.Send(ReadOnlySpan<byte>.Empty);
        await Task.Delay(100);
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10))) await seedA.CloseAsync(cts.Token);
        await seedPair.DisposeAsync();
        var seedList = seeds.ToArray();
        Assert.True(seedList.Length > 10);

        // Phase 1: everything re-stamped and re-tagged; the victim may close, but nothing may throw.
        int robustness = 0;
        long internalErrors = 0;
        while (robustness < 60_000)
        {
            var (pair, _, _, victimSeeds) = await NewPairAsync();
            uint victimTag = 0;
            foreach (var packet in victimSeeds) if (packet[12] != 1) victimTag = BinaryPrimitives.ReadUInt32BigEndian(packet.AsSpan(4));
            for (int i = 0; i < 10_000; i++, robustness++)
            {
                var mutant = Mutate(seedList[random.Next(seedList.Length)], random);
                if (mutant.Length >= 12)
                {
                    if (mutant.Length > 12 && mutant[12] != 1 && random.Next(8) != 0) BinaryPrimitives.WriteUInt32BigEndian(mutant.AsSpan(4), victimTag);
                    if (random.Next(10) != 0) Crc32c.StampPacket(mutant);
                }
                pair.B.OnDatagram(mutant);
            }
            internalErrors += pair.B.GetStatistics().InternalErrors;
            await pair.DisposeAsync();
        }
        Assert.Equal(0, internalErrors);

        // Phase 2: 40,000 mutants into the receiver of a 4 MB transfer, which must arrive intact.
        var (live, atA, atB, liveSeeds) = await NewPairAsync();
        await using (live)
        {
            uint liveTag = 0;
            foreach (var packet in liveSeeds) if (packet[12] != 1) liveTag = BinaryPrimitives.ReadUInt32BigEndian(packet.AsSpan(4));
            var transfer = SctpAssociationTests.TransferAsync(atA, atB, 4_000_000, 9, TimeSpan.FromSeconds(30));
            int injected = 0;
            while (injected < 40_000)
            {
                var mutant = Mutate(seedList[random.Next(seedList.Length)], random);
                if (mutant.Length > 12 && mutant[12] != 1) BinaryPrimitives.WriteUInt32BigEndian(mutant.AsSpan(4), liveTag);
                if (mutant.Length >= 12 && !CarriesUnauthenticatableChunk(mutant)) Crc32c.StampPacket(mutant);
                live.B.OnDatagram(mutant);
                if (++injected % 2000 == 0) await Task.Yield();
            }
            await transfer;
            var stats = live.B.GetStatistics();
            _output.WriteLine($"{robustness + injected} mutants in {watch.ElapsedMilliseconds} ms; live receiver {stats}");
            Assert.Equal(SctpAssociationState.Established, live.B.State);
            Assert.Equal(0, stats.InternalErrors);
            Assert.True(stats.ChecksumErrors > 1000);
        }
    }
}
