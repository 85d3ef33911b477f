using SleapRtc.Worker.Gpu;
using Xunit;

namespace SleapRtc.Job.Tests;

/// <summary>
/// The GPU probe against stand-in nvidia-smi scripts that replay recorded output: a worker never falls back to
/// "CPU, 0 MB" silently, and a GPU id nvidia-smi does not list is an error.
/// </summary>
public sealed class GpuProbeTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);
    private static string Fixture(string name) => Path.Combine(Fixtures.RepoRoot, "tests", "fixtures", name);

    [Fact]
    public void A_missing_nvidia_smi_falls_back_to_cpu_with_a_warning_naming_what_was_tried()
    {
        var result = GpuProbe.Probe("/nonexistent/nvidia-smi", 0, Timeout);
        Assert.Equal(GpuInfo.Cpu, result.Gpu);
        Assert.NotNull(result.Warning);
        Assert.Contains("nvidia-smi was not found", result.Warning);
        Assert.Contains("'/nonexistent/nvidia-smi'", result.Warning);
        Assert.Contains("CPU with 0 MB", result.Warning);
    }

    [Fact]
    public void A_failing_nvidia_smi_falls_back_to_cpu_with_its_exit_code_and_message()
    {
        var smi = Fixture("nvidia-smi-driver-failure");
        var result = GpuProbe.Probe(smi, 0, Timeout);
        Assert.Equal(GpuInfo.Cpu, result.Gpu);
        Assert.Contains($"nvidia-smi ('{smi}') exited with code 9", result.Warning);
        Assert.Contains("couldn't communicate with the NVIDIA driver", result.Warning);
    }

    [Fact]
    public void A_hung_nvidia_smi_is_given_up_on_with_a_warning()
    {
        var started = DateTime.UtcNow;
        var result = GpuProbe.Probe(Fixture("nvidia-smi-hung"), 0, TimeSpan.FromSeconds(1));
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(8));
        Assert.Equal(GpuInfo.Cpu, result.Gpu);
        Assert.Contains("did not answer within 1 s", result.Warning);
    }

    [Fact]
    public void A_gpu_id_the_box_does_not_have_is_an_error_listing_the_gpus_it_has()
    {
        var smi = Fixture("nvidia-smi-one-gpu");
        var error = Assert.Throws<GpuNotFoundException>(() => GpuProbe.Probe(smi, 7, Timeout));
        Assert.Equal("GpuNotFound", error.ErrorId);
        Assert.Equal(7, error.GpuId);
        Assert.Contains("GPU 7 does not exist", error.Message);
        Assert.Contains("GPU 0 (NVIDIA GeForce RTX 3060, 12288 MB)", error.Message);
        Assert.Contains("-GpuId", error.RecommendedAction);
    }

    [Fact]
    public void A_gpu_that_exists_is_read_without_a_warning()
    {
        var result = GpuProbe.Probe(Fixture("nvidia-smi-one-gpu"), 0, Timeout);
        Assert.Null(result.Warning);
        Assert.Equal((0, "NVIDIA GeForce RTX 3060", 12288L, "12.2"), (result.Gpu.Index!.Value, result.Gpu.Model, result.Gpu.MemoryMB, result.Gpu.CudaVersion));
    }

    [Fact]
    public void Listing_gives_every_gpu_or_the_problem()
    {
        var three = GpuProbe.List(Fixtures.NvidiaSmi, Timeout);
        Assert.Null(three.Problem);
        Assert.Equal(new int?[] { 0, 1, 2 }, three.Gpus.Select(g => g.Index));
        var broken = GpuProbe.List(Fixture("nvidia-smi-driver-failure"), Timeout);
        Assert.Empty(broken.Gpus);
        Assert.Contains("exited with code 9", broken.Problem);
    }
}
