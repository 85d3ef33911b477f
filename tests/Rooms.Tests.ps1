BeforeAll {
    . (Join-Path $PSScriptRoot 'common.ps1')
    $server = Start-SleapSignalingServer -Port 0 -ListenAddress 127.0.0.1 -DatabasePath ':memory:'
}
AfterAll { Get-SleapSignalingServer | Stop-SleapSignalingServer }

Describe 'New-SleapRoom / Remove-SleapRoom' {
    It 'creates a room with a strong token, saves it and completes its id' {
        $room = New-SleapRoom -Server $server.Url -Name lab-a -ExpiresIn ([timespan]::FromDays(7))
        $room | Should -BeOfType SleapRtc.Room
        $room.Token.Length | Should -BeGreaterOrEqual 22
        (Complete "Remove-SleapRoom -RoomId $($room.RoomId.Substring(0, 4))").CompletionText | Should -Contain $room.RoomId
        ($room | Out-String) | Should -Not -Match ([regex]::Escape($room.Token))
    }
    It 'removes a piped room on the server and locally' {
        $room = New-SleapRoom -Server $server.Url
        $room | Remove-SleapRoom -Confirm:$false
        Remove-SleapRoom -RoomId $room.RoomId -Token x -Server $server.Url -Confirm:$false -ErrorVariable errs -ErrorAction SilentlyContinue
        # The server answers an unknown room like a wrong token, so nobody can probe which rooms exist.
        $errs[0].FullyQualifiedErrorId | Should -BeLike 'InvalidRoomCredentials,*'
    }
    It 'reports a wrong token as invalid room credentials' {
        $room = New-SleapRoom -Server $server.Url
        Remove-SleapRoom -RoomId $room.RoomId -Token wrong -Confirm:$false -ErrorVariable errs -ErrorAction SilentlyContinue
        $errs[0].FullyQualifiedErrorId | Should -BeLike 'InvalidRoomCredentials,*'
        $errs[0].CategoryInfo.Category | Should -Be 'AuthenticationError'
    }
}
