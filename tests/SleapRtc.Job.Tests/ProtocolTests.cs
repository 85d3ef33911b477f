using SleapRtc.Protocol.Jobs;
using Xunit;

namespace SleapRtc.Job.Tests;

public sealed class ProtocolTests
{
    [Theory]
    [InlineData("labels.v001.zip:1048576:False", "labels.v001.zip", 1048576L, "False")]
    [InlineData("trained_pkg.zip:12:models", "trained_pkg.zip", 12L, "models")]
    [InlineData("out.zip:5:C:\\Users\\me\\models", "out.zip", 5L, "C:\\Users\\me\\models")]
    public void FileMeta_parses_classic_shapes(string argument, string name, long size, string third)
    {
        Assert.True(FileMetaInfo.TryParse(argument, out var meta));
        Assert.Equal(new FileMetaInfo(name, size, third), meta);
    }

    [Fact]
    public void FileMeta_round_trips_and_rejects_garbage()
    {
        var meta = new FileMetaInfo("a.zip", 42, "True");
        Assert.Equal("FILE_META::a.zip:42:True", meta.ToMessage());
        var (type, args) = JobMessages.Parse(meta.ToMessage());
        Assert.Equal(JobMessages.FileMeta, type);
        Assert.True(FileMetaInfo.TryParse(args.Single(), out var back));
        Assert.Equal(meta, back);
        Assert.False(FileMetaInfo.TryParse("no-size-here", out _));
        Assert.False(FileMetaInfo.TryParse("a.zip:-3:x", out _));
        Assert.Equal("c_d.zip", FileMetaInfo.WireSafeName("/tmp/x/c:d.zip"));
    }

    [Fact]
    public void Messages_split_on_double_colons()
    {
        var (type, args) = JobMessages.Parse("TRAIN_JOB_ERROR::centroid::2");
        Assert.Equal("TRAIN_JOB_ERROR", type);
        Assert.Equal(new[] { "centroid", "2" }, args);
        (type, args) = JobMessages.Parse("TRAINING_JOBS_DONE");
        Assert.Equal("TRAINING_JOBS_DONE", type);
        Assert.Empty(args);
        Assert.True(JobMessages.IsKeepAlive("KEEP_ALIVE"u8));
        Assert.False(JobMessages.IsKeepAlive("KEEP_ALIVE!"u8));
    }

    [Theory]
    [InlineData("Epoch 3: 100%| 4/4 [00:00<00:00, train_loss=0.0123, val_loss=0.0200]", 4, null, 0.0123, 0.02)]
    [InlineData("Epoch 5/20: 184it [00:34, 5.29it/s, loss=5.51]", 5, 20, 5.51, null)]
    [InlineData("epoch 2/10 loss: 1e-3", 2, 10, 0.001, null)]
    [InlineData("INFO: Saved checkpoint to models/c/best.ckpt", null, null, null, null)]
    public void Trainer_lines_yield_epochs_and_losses(string line, int? epoch, int? count, double? loss, double? val)
    {
        var info = TrainerOutputParser.Parse(line);
        Assert.Equal(epoch, info.Epoch);
        Assert.Equal(count, info.EpochCount);
        Assert.Equal(loss, info.Loss);
        Assert.Equal(val, info.ValLoss);
    }

    [Fact]
    public void Extension_handshake_and_progress_round_trip()
    {
        var (type, args) = JobMessages.Parse(JobExtensions.HelloMessage("j1"));
        Assert.Equal(JobMessages.Hello, type);
        var hello = JobExtensions.ParseHandshake(args[0]);
        Assert.NotNull(hello);
        Assert.Equal(JobExtensions.Version, hello!.Version);
        Assert.Contains(JobExtensions.FeatureSha256, hello.Features);

        var progress = new JobProgress { JobId = "j1", Phase = "training", ConfigIndex = 2, ConfigCount = 3, Epoch = 4, EpochCount = 10, Loss = 0.5, LossHistory = new[] { 1.0, 0.5 } };
        var (_, progressArgs) = JobMessages.Parse(JobExtensions.ProgressMessage(progress));
        Assert.Contains("\"config_index\":2", progressArgs[0]);
        var back = JobExtensions.ParseProgress(progressArgs[0])!;
        Assert.Equal((2, 3, 4, 10, 0.5), (back.ConfigIndex, back.ConfigCount, back.Epoch, back.EpochCount, back.Loss));
        Assert.Equal(new[] { 1.0, 0.5 }, back.LossHistory);

        Assert.True(JobExtensions.IsAdvertised(new Dictionary<string, object?> { ["sleaprtc_ext"] = 1 }));
        Assert.True(JobExtensions.IsAdvertised(new Dictionary<string, object?> { ["sleaprtc_ext"] = System.Text.Json.JsonDocument.Parse("1").RootElement }));
        Assert.False(JobExtensions.IsAdvertised(new Dictionary<string, object?> { ["gpu_model"] = "CPU" }));
    }

    [Fact]
    public async Task File_sender_and_receiver_stream_with_checksum()
    {
        var dir = Fixtures.NewTempDirectory("transfer");
        var data = new byte[300_000];
        new Random(1).NextBytes(data);
        var frames = new List<byte[]>();
        var texts = new List<string>();
        var digest = await FileSender.SendAsync(new MemoryStream(data), new FileMetaInfo("x.bin", data.Length, "False"),
            texts.Add, (f, _) => { frames.Add(f.ToArray()); return ValueTask.CompletedTask; }, 65536, true, null, CancellationToken.None);
        Assert.Equal(5, frames.Count);
        Assert.Equal(new[] { "FILE_META::x.bin:300000:False", "SLEAPRTC_SHA256::" + digest, "END_OF_FILE" }, texts);

        using var receiver = new FileReceiver(new FileMetaInfo("x.bin", data.Length, "False"), Path.Combine(dir, "x.bin"));
        foreach (var f in frames) receiver.Write(f);
        receiver.ExpectSha256(digest);
        receiver.Complete();
        Assert.Equal(data, File.ReadAllBytes(receiver.Path));

        using var corrupted = new FileReceiver(new FileMetaInfo("y.bin", data.Length, "False"), Path.Combine(dir, "y.bin"));
        foreach (var f in frames) { f[0] ^= 0xFF; corrupted.Write(f); }
        corrupted.ExpectSha256(digest);
        var error = Assert.Throws<FileChecksumException>(corrupted.Complete);
        Assert.Contains("y.bin", error.Message);
        Assert.False(File.Exists(corrupted.Path));
    }
}
