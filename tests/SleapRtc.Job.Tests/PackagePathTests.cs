using SleapRtc.Client.Jobs;
using SleapRtc.Protocol.Jobs;
using SleapRtc.Worker.Jobs;
using SleapRtc.Worker.Training;
using Xunit;

namespace SleapRtc.Job.Tests;

/// <summary>Every path the worker hands the trainer stays inside the unpacked package.</summary>
public sealed class PackagePathTests
{
    [Theory]
    [InlineData("../../../etc/passwd", "outside the package")]
    [InlineData("configs/../../escape.json", "outside the package")]
    [InlineData("/etc/passwd", "absolute")]
    [InlineData("C:\\Windows\\win.ini", "absolute")]
    [InlineData("~/secrets.yaml", "absolute")]
    public void Paths_that_leave_the_package_are_refused(string path, string reason)
    {
        var root = Fixtures.NewTempDirectory("paths");
        var error = Assert.Throws<PathOutsidePackageException>(() => PackagePaths.CheckConfig(root, path));
        Assert.Contains(reason, error.Message);
        Assert.Contains(path, error.Message);
    }

    [Fact]
    public void Paths_inside_the_package_resolve_there()
    {
        var root = Fixtures.NewTempDirectory("paths-ok");
        Directory.CreateDirectory(Path.Combine(root, "configs"));
        Assert.Equal(Path.Combine(root, "configs", "centroid.json"), PackagePaths.Resolve(root, "configs/centroid.json", "config name"));
        Assert.Equal(Path.Combine(root, "centroid.json"), PackagePaths.Resolve(root, "configs/../centroid.json", "config name"));
        PackagePaths.CheckConfig(root, "not-there-yet.yaml"); // the trainer reports a missing config itself
    }

    [Fact]
    public void Symbolic_links_out_of_the_package_are_refused()
    {
        var root = Fixtures.NewTempDirectory("paths-link");
        File.CreateSymbolicLink(Path.Combine(root, "centroid.json"), "/etc/passwd");
        Directory.CreateSymbolicLink(Path.Combine(root, "configs"), "/etc");
        File.CreateSymbolicLink(Path.Combine(root, "dangling.yaml"), "/nonexistent/x");
        File.CreateSymbolicLink(Path.Combine(root, "bare.yaml"), "/etc/hostname");

        Assert.Contains("symbolic link", Assert.Throws<PathOutsidePackageException>(() => PackagePaths.CheckConfig(root, "centroid.json")).Message);
        Assert.Contains("'configs' is a symbolic link", Assert.Throws<PathOutsidePackageException>(() => PackagePaths.CheckConfig(root, "configs/passwd")).Message);
        Assert.Contains("symbolic link", Assert.Throws<PathOutsidePackageException>(() => PackagePaths.CheckConfig(root, "dangling.yaml")).Message);
        // Named without its extension: the trainer would try bare.yaml.
        Assert.Contains("'bare.yaml' is a symbolic link", Assert.Throws<PathOutsidePackageException>(() => PackagePaths.CheckConfig(root, "bare")).Message);
    }

    [Theory]
    [InlineData("../../../etc/passwd")]
    [InlineData("/etc/passwd")]
    public async Task A_train_script_naming_a_config_outside_the_package_fails_the_job_before_any_training(string configName)
    {
        var dir = Fixtures.NewTempDirectory("escape-job");
        var package = Path.Combine(dir, "escape.zip");
        using (var zip = System.IO.Compression.ZipFile.Open(package, System.IO.Compression.ZipArchiveMode.Create))
        {
            using (var config = zip.CreateEntry("escape/centroid.json").Open()) config.Write(System.Text.Encoding.UTF8.GetBytes(Fixtures.Config(1)));
            using var script = zip.CreateEntry("escape/train-script.sh").Open();
            script.Write(System.Text.Encoding.UTF8.GetBytes($"sleap-nn train --config-name centroid.json\nsleap-nn train --config-name {configName} --config-dir .\n"));
        }
        await using var pair = new InProcessChannelPair();
        var worker = new WorkerJobSession(pair.Worker, new WorkerJobOptions
        {
            JobsDirectory = Path.Combine(dir, "jobs"), TrainerPath = Fixtures.SleapNn, ResultsDrainTimeout = TimeSpan.FromSeconds(5),
        });
        var trainerLines = new List<string>();
        worker.LogLine += l => { lock (trainerLines) trainerLines.Add(l); };
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var workerRun = worker.RunAsync(cts.Token);
        var client = new ClientJobSession(pair.Client, "w", useExtensions: true);

        var error = await Assert.ThrowsAsync<JobFailedException>(() => client.RunAsync(package, Path.Combine(dir, "out"), cts.Token));
        Assert.Equal(JobErrorCodes.BadPackage, error.Code);
        Assert.Contains($"config name '{configName}' was refused", error.Message);
        await pair.Client.CloseAsync(CancellationToken.None);
        var outcome = await workerRun;
        Assert.Equal(WorkerJobEnd.Failed, outcome.End);
        lock (trainerLines) Assert.DoesNotContain(trainerLines, l => l.Contains("Starting training"));
    }
}
