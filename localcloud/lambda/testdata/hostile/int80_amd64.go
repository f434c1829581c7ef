package main

// int80 makes a system call through the 32-bit ABI (int 0x80) and returns
// the kernel's answer.
func int80(trap, a1, a2, a3 uintptr) uintptr

// i386Getpid is getpid's number in the 32-bit ABI.
const i386Getpid = 20

const haveInt80 = true
