using System.IO.Compression;
using System.Security.Cryptography;
using SleapRtc.Protocol.Jobs;
using Xunit;

namespace SleapRtc.Job.Tests;

/// <summary>Issue 13: large stored entries are written to their files while a zip arrives, cut off and resumed or not.</summary>
public sealed class ZipEntrySplitterTests
{
    private static string BuildZip(string dir, out Dictionary<string, byte[]> contents)
    {
        var random = new Random(13);
        contents = new Dictionary<string, byte[]>
        {
            ["pkg/track-script.sh"] = "sleap-nn track\n"u8.ToArray(),
            ["pkg/video.mp4"] = RandomBytes(random, 3_000_000),
            ["pkg/models/m/best.ckpt"] = RandomBytes(random, 200_000),
            ["pkg/second.mp4"] = RandomBytes(random, 1_500_000),
        };
        var path = Path.Combine(dir, "pkg.zip");
        using var zip = ZipFile.Open(path, ZipArchiveMode.Create);
        foreach (var (name, bytes) in contents)
        {
            using var stream = zip.CreateEntry(name, name.EndsWith(".mp4") ? CompressionLevel.NoCompression : CompressionLevel.Fastest).Open();
            stream.Write(bytes);
        }
        return path;
    }

    private static byte[] RandomBytes(Random random, int length)
    {
        var bytes = new byte[length];
        random.NextBytes(bytes);
        return bytes;
    }

    /// <summary>Feeds the zip in uneven chunks (headers split across them), optionally cut at <paramref name="cutAt"/> and resumed.</summary>
    private static FileReceiver Receive(string zip, string received, string extractTo, long? cutAt)
    {
        var bytes = File.ReadAllBytes(zip);
        var meta = new FileMetaInfo("pkg.zip", bytes.Length, "False");
        var receiver = new FileReceiver(meta, received, new ZipEntrySplitter(extractTo, minEntryBytes: 1_000_000));
        var position = 0;
        var random = new Random(7);
        void Feed(FileReceiver r, long until)
        {
            while (position < until)
            {
                var n = (int)Math.Min(random.Next(1, 70_000), until - position);
                r.Write(bytes.AsSpan(position, n));
                position += n;
            }
        }
        if (cutAt is { } cut)
        {
            Feed(receiver, cut);
            Assert.Equal(cut, receiver.Park());
            var split = receiver.SplitEntries.ToArray();
            receiver.Dispose();
            receiver = FileReceiver.Resume(meta, received, cut, splitter: new ZipEntrySplitter(extractTo, minEntryBytes: 1_000_000), splitEntries: split);
            Assert.Equal(Convert.ToHexString(SHA256.HashData(bytes.AsSpan(0, (int)cut))).ToLowerInvariant(), receiver.PrefixSha256);
        }
        Feed(receiver, bytes.Length);
        receiver.ExpectSha256(Convert.ToHexString(SHA256.HashData(bytes)));
        receiver.Complete();
        return receiver;
    }

    [Theory]
    [InlineData(null)]
    [InlineData(20L)]          // inside the first local header
    [InlineData(1_000_000L)]   // inside the first large entry
    [InlineData(3_100_000L)]   // between entries, in the deflated checkpoint
    [InlineData(4_000_000L)]   // inside the second large entry
    public void Large_stored_entries_land_in_their_files_once_and_the_unpack_takes_them_as_they_are(long? cutAt)
    {
        var dir = Fixtures.NewTempDirectory("splitter");
        var zip = BuildZip(dir, out var contents);
        var extractTo = Path.Combine(dir, "package");
        using var receiver = Receive(zip, Path.Combine(dir, "received.zip"), extractTo, cutAt);

        Assert.Equal(new[] { "pkg/video.mp4", "pkg/second.mp4" }, receiver.SplitEntries.Select(e => e.Name));
        // The zip on disk holds holes where the split entries were: the unpack must not copy them again.
        var files = PackageArchive.ExtractSafely(receiver.Path, extractTo, extractedWhileReceived: receiver.SplitEntries);
        Assert.Equal(contents.Count, files.Count);
        foreach (var (name, bytes) in contents)
            Assert.Equal(bytes, File.ReadAllBytes(Path.Combine(extractTo, name)));
    }

    [Fact]
    public void A_split_entry_the_central_directory_does_not_confirm_refuses_the_archive()
    {
        var dir = Fixtures.NewTempDirectory("splitter-lie");
        var zip = BuildZip(dir, out _);
        var extractTo = Path.Combine(dir, "package");
        using var receiver = Receive(zip, Path.Combine(dir, "received.zip"), extractTo, null);
        var lie = receiver.SplitEntries.Select(e => e with { Length = e.Length - 1 }).ToArray();
        Assert.Throws<UnsafeArchiveException>(() => PackageArchive.ExtractSafely(receiver.Path, extractTo, extractedWhileReceived: lie));
    }
}
