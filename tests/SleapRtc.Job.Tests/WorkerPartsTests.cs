using System.IO.Compression;
using SleapRtc.Protocol.Jobs;
using SleapRtc.Worker.Gpu;
using SleapRtc.Worker.Training;
using Xunit;

namespace SleapRtc.Job.Tests;

public sealed class WorkerPartsTests
{
    [Fact]
    public void Train_script_configs_in_all_three_spellings()
    {
        const string script = """
            #!/bin/bash
            # exported by SLEAP
            sleap-train centroid.json labels.v001.pkg.slp
            sleap-nn train --config-name "centered_instance.yaml" --config-dir . \
                trainer_config.max_epochs=5
            sleap-nn-train --config-name=bottomup.json
            echo sleap-nn train --config-name ignored.json
            """;
        Assert.Equal(new[] { "centroid.json", "centered_instance.yaml", "bottomup.json" }, TrainScript.ParseConfigs(script));
        Assert.Equal("centered_instance", TrainScript.ConfigStem("configs/centered_instance.yaml"));
        Assert.Empty(TrainScript.ParseConfigs("python train.py\n"));
    }

    [Fact]
    public void Trainer_arguments_are_the_classic_overrides()
    {
        var args = TrainerProcess.BuildArguments("centroid.json", "models");
        Assert.Equal(new[]
        {
            "train", "--config-name", "centroid.json", "--config-dir", ".", "trainer_config.ckpt_dir=models",
            "trainer_config.run_name=centroid", "trainer_config.zmq.controller_port=9000", "trainer_config.zmq.publish_port=9001",
            "trainer_config.train_data_loader.num_workers=0", "trainer_config.val_data_loader.num_workers=0",
        }, args);
    }

    [Theory]
    [InlineData(0, "NVIDIA GeForce RTX 4090", 24564L)]
    [InlineData(1, "NVIDIA RTX A6000", 49140L)]
    [InlineData(2, "NVIDIA GeForce GTX 1080 Ti", 11264L)]
    public void Gpu_probe_reads_recorded_multi_gpu_output_per_gpu_id(int gpuId, string model, long memory)
    {
        var gpu = GpuProbe.Probe(Fixtures.NvidiaSmi, gpuId, TimeSpan.FromSeconds(10)).Gpu;
        Assert.Equal((gpuId, model, memory, "12.2", "535.104.05"), (gpu.Index!.Value, gpu.Model, gpu.MemoryMB, gpu.CudaVersion, gpu.DriverVersion));
    }

    [Fact]
    public void The_cpu_description_is_what_classic_workers_send_without_cuda()
    {
        Assert.Equal("CPU", GpuInfo.Cpu.Model);
        Assert.Equal(0, GpuInfo.Cpu.MemoryMB);
        Assert.False(GpuInfo.Cpu.IsGpu);
    }

    [Fact]
    public void Gpu_query_parser_tolerates_units_and_blank_lines()
    {
        var gpus = GpuProbe.ParseQueryOutput("0, Tesla T4, 15360 MiB, 470.1\n\n garbage \n1, A100-SXM4-80GB, 81920, 525.0\n");
        Assert.Equal(new long[] { 15360, 81920 }, gpus.Select(g => g.MemoryMB));
    }

    [Fact]
    public void Executable_lookup_prefers_explicit_then_environment_then_path()
    {
        Assert.Equal(Fixtures.SleapNn, ExecutableLocator.Find(Fixtures.SleapNn, "SLEAPRTC_TEST_UNSET_VAR", "no-such-tool"));
        Environment.SetEnvironmentVariable("SLEAPRTC_TEST_TOOL_VAR", Fixtures.NvidiaSmi);
        try { Assert.Equal(Fixtures.NvidiaSmi, ExecutableLocator.Find(null, "SLEAPRTC_TEST_TOOL_VAR", "no-such-tool")); }
        finally { Environment.SetEnvironmentVariable("SLEAPRTC_TEST_TOOL_VAR", null); }
        Assert.Null(ExecutableLocator.Find(null, "SLEAPRTC_TEST_UNSET_VAR", "no-such-tool-anywhere"));
        Assert.NotNull(ExecutableLocator.Find(null, "SLEAPRTC_TEST_UNSET_VAR", "bash"));
    }

    [Theory]
    [InlineData("../evil.txt", "zip-slip")]
    [InlineData("pkg/../../evil.txt", "zip-slip")]
    [InlineData("/etc/evil.txt", "absolute")]
    [InlineData("C:/evil.txt", "absolute")]
    public void Hostile_archives_are_rejected_before_anything_is_written(string entryName, string reason)
    {
        var dir = Fixtures.NewTempDirectory("hostile");
        var zipPath = Path.Combine(dir, "bad.zip");
        using (var zip = ZipFile.Open(zipPath, ZipArchiveMode.Create))
        {
            using (var ok = zip.CreateEntry("pkg/fine.txt").Open()) ok.WriteByte(1);
            using (var evil = zip.CreateEntry(entryName).Open()) evil.WriteByte(2);
        }
        var target = Path.Combine(dir, "out");
        var error = Assert.Throws<UnsafeArchiveException>(() => PackageArchive.ExtractSafely(zipPath, target));
        Assert.Contains(reason, error.Message);
        Assert.False(File.Exists(Path.Combine(target, "pkg", "fine.txt")));
        Assert.False(File.Exists(Path.Combine(dir, "evil.txt")));
    }

    [Fact]
    public void Symbolic_links_in_archives_are_rejected()
    {
        var dir = Fixtures.NewTempDirectory("symlink");
        var zipPath = Path.Combine(dir, "link.zip");
        using (var zip = ZipFile.Open(zipPath, ZipArchiveMode.Create))
        {
            var link = zip.CreateEntry("pkg/passwd");
            link.ExternalAttributes = unchecked((int)(0xA1FFu << 16)); // S_IFLNK | 0777
            using var s = link.Open();
            s.Write("/etc/passwd"u8);
        }
        var error = Assert.Throws<UnsafeArchiveException>(() => PackageArchive.ExtractSafely(zipPath, Path.Combine(dir, "out")));
        Assert.Contains("symbolic links", error.Message);
    }

    [Fact]
    public void Archives_round_trip_folder_contents()
    {
        var dir = Fixtures.NewTempDirectory("roundtrip");
        Directory.CreateDirectory(Path.Combine(dir, "models", "run1"));
        File.WriteAllText(Path.Combine(dir, "models", "run1", "best.ckpt"), "x");
        PackageArchive.CreateFromDirectoryContents(Path.Combine(dir, "models"), Path.Combine(dir, "r.zip"));
        var files = PackageArchive.ExtractSafely(Path.Combine(dir, "r.zip"), Path.Combine(dir, "out"));
        Assert.Equal(Path.Combine(dir, "out", "run1", "best.ckpt"), Assert.Single(files));
        PackageArchive.CreateFromDirectoryContents(Path.Combine(dir, "absent"), Path.Combine(dir, "empty.zip"));
        Assert.Empty(PackageArchive.ExtractSafely(Path.Combine(dir, "empty.zip"), Path.Combine(dir, "out2")));
    }
}
