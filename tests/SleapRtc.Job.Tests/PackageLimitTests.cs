using System.IO.Compression;
using SleapRtc.Client.Jobs;
using SleapRtc.Protocol.Jobs;
using SleapRtc.Worker.Jobs;
using Xunit;

namespace SleapRtc.Job.Tests;

/// <summary>How far a package may inflate: zip bombs, lying sizes, the unpacked size and free disk limits.</summary>
public sealed class PackageLimitTests
{
    private const long GiB = 1L << 30;

    /// <summary>A real bomb: about 1 MB of zip that holds 1 GiB of zeros (~1,000:1).</summary>
    private static string BuildBomb(string directory, string? prefix = null)
    {
        var path = Path.Combine(directory, "bomb.zip");
        using var zip = ZipFile.Open(path, ZipArchiveMode.Create);
        if (prefix is not null)
        {
            using var script = zip.CreateEntry(prefix + "train-script.sh").Open();
            script.Write("sleap-nn train --config-name c.json\n"u8);
        }
        using var entry = zip.CreateEntry((prefix ?? "") + "zeros.bin", CompressionLevel.SmallestSize).Open();
        var zeros = new byte[1 << 20];
        for (var i = 0; i < 1024; i++) entry.Write(zeros);
        return path;
    }

    /// <summary>Rewrites the uncompressed size every central directory record declares (what ZipArchive reports as Length).</summary>
    private static void DeclareUncompressedSize(string zipPath, uint size)
    {
        var bytes = File.ReadAllBytes(zipPath);
        for (var i = 0; i + 46 <= bytes.Length; i++)
        {
            if (bytes[i] != 0x50 || bytes[i + 1] != 0x4b || bytes[i + 2] != 0x01 || bytes[i + 3] != 0x02) continue;
            BitConverter.GetBytes(size).CopyTo(bytes, i + 24);
        }
        File.WriteAllBytes(zipPath, bytes);
    }

    [Fact]
    public void A_zip_bomb_is_refused_by_the_compression_ratio_and_nothing_stays()
    {
        var dir = Fixtures.NewTempDirectory("bomb");
        var bomb = BuildBomb(dir);
        Assert.True(new FileInfo(bomb).Length < 2_000_000, "the bomb should be about 1 MB");
        var target = Path.Combine(dir, "out");

        var error = Assert.Throws<PackageLimitExceededException>(() => PackageArchive.ExtractSafely(bomb, target));
        Assert.Equal(PackageLimit.CompressionRatio, error.Limit);
        Assert.Contains("compression ratio limit", error.Message);
        Assert.Contains("zeros.bin", error.Message);
        Assert.Empty(Directory.GetFiles(target, "*", SearchOption.AllDirectories));
    }

    [Fact]
    public void Sizes_the_zip_declares_are_not_trusted()
    {
        // The entry claims 300 MiB (the truth is 1 GiB) and the unpacked size limit is 400 MiB: the early check
        // on declared sizes passes; what stops it is the count of bytes actually inflated, at 200:1.
        var dir = Fixtures.NewTempDirectory("liar");
        var bomb = BuildBomb(dir);
        DeclareUncompressedSize(bomb, 300u << 20);
        using (var zip = ZipFile.OpenRead(bomb)) Assert.Equal(300L << 20, zip.Entries.Single().Length);

        var error = Assert.Throws<PackageLimitExceededException>(() =>
            PackageArchive.ExtractSafely(bomb, Path.Combine(dir, "out"), new PackageLimits { MaxUnpackedBytes = 400L << 20 }));
        Assert.Equal(PackageLimit.CompressionRatio, error.Limit);
        Assert.Empty(Directory.GetFiles(Path.Combine(dir, "out"), "*", SearchOption.AllDirectories));
    }

    [Fact]
    public void Many_small_entries_are_held_to_the_ratio_of_the_whole_archive()
    {
        // Each entry stays under the per-entry exemption (1 MiB); together they inflate ~1,000:1.
        var dir = Fixtures.NewTempDirectory("many");
        var path = Path.Combine(dir, "many.zip");
        var zeros = new byte[1 << 20];
        using (var zip = ZipFile.Open(path, ZipArchiveMode.Create))
            for (var i = 0; i < 300; i++)
            {
                using var s = zip.CreateEntry($"pkg/part{i}.bin", CompressionLevel.SmallestSize).Open();
                s.Write(zeros);
            }
        var error = Assert.Throws<PackageLimitExceededException>(() => PackageArchive.ExtractSafely(path, Path.Combine(dir, "out")));
        Assert.Equal(PackageLimit.CompressionRatio, error.Limit);
        Assert.Contains("The archive inflates", error.Message);
    }

    [Fact]
    public void A_package_larger_than_the_free_disk_space_is_refused_before_anything_is_written()
    {
        var dir = Fixtures.NewTempDirectory("disk");
        var free = new DriveInfo(dir).AvailableFreeSpace;
        var entries = (int)(free / uint.MaxValue) + 2;
        var path = Path.Combine(dir, "huge.zip");
        using (var zip = ZipFile.Open(path, ZipArchiveMode.Create))
            for (var i = 0; i < entries; i++)
            {
                using var s = zip.CreateEntry($"pkg/video{i}.mp4").Open();
                s.WriteByte(1);
            }
        DeclareUncompressedSize(path, uint.MaxValue); // each entry claims 4 GiB

        var error = Assert.Throws<PackageLimitExceededException>(() =>
            PackageArchive.ExtractSafely(path, Path.Combine(dir, "out"), new PackageLimits { MaxUnpackedBytes = long.MaxValue }));
        Assert.Equal(PackageLimit.DiskSpace, error.Limit);
        Assert.Contains("free disk space", error.Message);
        Assert.False(Directory.Exists(Path.Combine(dir, "out", "pkg")));
    }

    [Fact]
    public void Real_packages_pass_the_default_limits()
    {
        // Text configs compress far beyond 200:1 when small: the 1 MiB exemption lets them through.
        var dir = Fixtures.NewTempDirectory("real");
        var path = Path.Combine(dir, "real.zip");
        using (var zip = ZipFile.Open(path, ZipArchiveMode.Create))
        {
            using (var c = zip.CreateEntry("pkg/centroid.json", CompressionLevel.SmallestSize).Open())
                c.Write(System.Text.Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat("{\"a\": 1}\n", 50_000))));
            using var v = zip.CreateEntry("pkg/video.mp4", CompressionLevel.NoCompression).Open();
            v.Write(new byte[3 << 20]);
        }
        Assert.Equal(2, PackageArchive.ExtractSafely(path, Path.Combine(dir, "out")).Count);
    }

    [Fact]
    public async Task The_worker_refuses_a_bomb_and_tells_the_client_which_limit_was_hit()
    {
        var dir = Fixtures.NewTempDirectory("bomb-job");
        var bomb = BuildBomb(dir, "bomb/");
        await using var pair = new InProcessChannelPair();
        var worker = new WorkerJobSession(pair.Worker, new WorkerJobOptions
        {
            JobsDirectory = Path.Combine(dir, "jobs"), TrainerPath = Fixtures.SleapNn, ResultsDrainTimeout = TimeSpan.FromSeconds(5),
        });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var workerRun = worker.RunAsync(cts.Token);
        var client = new ClientJobSession(pair.Client, "w", useExtensions: true);

        var error = await Assert.ThrowsAsync<JobFailedException>(() => client.RunAsync(bomb, Path.Combine(dir, "out"), cts.Token));
        Assert.Equal(JobErrorCodes.BadPackage, error.Code);
        Assert.Contains("compression ratio limit", error.Message);
        Assert.Contains("-MaxPackageRatio", error.Message);
        await pair.Client.CloseAsync(CancellationToken.None);
        Assert.Equal(WorkerJobEnd.Failed, (await workerRun).End);
        Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(dir, "jobs")));
    }

    [Fact]
    public async Task The_unpacked_size_limit_of_the_worker_options_applies_to_jobs()
    {
        await using var room = await RoomFixture.StartAsync();
        var worker = await room.StartWorkerAsync(maxUnpackedSize: 1L << 20);
        var package = Fixtures.BuildPackage(room.Root, "big", new Dictionary<string, string> { ["c.json"] = Fixtures.Config(1) }, extraBytes: 2_000_000);
        // The worker got the package but refused to unpack it: a Failed result of that worker, whose error says why.
        var result = await new TrainingSubmission(new SubmissionOptions
        {
            PackagePath = package, OutputPath = Path.Combine(room.Root, "out"), PeerConnectionFactory = room.Transport,
            PeerConnection = RoomFixture.Loopback, SessionString = worker.Session.SessionString,
        }).RunAsync(CancellationToken.None).WaitAsync(RoomFixture.Wait);
        Assert.Equal("Failed", result.Status);
        Assert.Contains("1 MiB, the unpacked size limit", result.Error);
        Assert.Contains("-MaxUnpackedSize", result.Error);
    }
}
