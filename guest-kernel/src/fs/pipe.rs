//! In-guest pipes: a 64 KiB ring buffer of guest frames per pipe. Bytes move between the
//! program's pages and the buffer by `Opcode::Copy`, never through ring 0.
//!
//! The kernel runs one thread, so a blocking read of an empty pipe whose writer is still open
//! (or a blocking write to a full one) can never be satisfied: like Linux, the program then
//! sleeps until the run's time limit ends it.

use alloc::vec::Vec;

use shim_abi::PAGE_SIZE;

use crate::errno::Errno;
use crate::mm::frames::FrameAllocator;

/// Pages in a pipe's buffer (Linux's default pipe size).
pub const PIPE_PAGES: usize = 16;
pub const PIPE_CAPACITY: u64 = PIPE_PAGES as u64 * PAGE_SIZE;

pub struct Pipe {
    /// Buffer frames (GPA), allocated with the pipe.
    frames: [u64; PIPE_PAGES],
    /// Offset of the first unread byte in the ring buffer.
    head: u64,
    /// Unread bytes.
    pub len: u64,
    pub readers: u32,
    pub writers: u32,
}

impl Pipe {
    pub fn new(frames: &mut FrameAllocator) -> Result<Self, Errno> {
        let mut buffer = [0u64; PIPE_PAGES];
        for index in 0..PIPE_PAGES {
            match frames.allocate() {
                Some(frame) => buffer[index] = frame,
                None => {
                    buffer[..index].iter().for_each(|&f| frames.free(f));
                    return Err(Errno::ENFILE);
                }
            }
        }
        Ok(Self { frames: buffer, head: 0, len: 0, readers: 1, writers: 1 })
    }

    /// Gives the buffer back once both ends are closed.
    pub fn release(&mut self, frames: &mut FrameAllocator) {
        for frame in self.frames.iter_mut().filter(|f| **f != 0) {
            frames.free(*frame);
            *frame = 0;
        }
    }

    /// The pieces of the buffer holding ring offsets `[start, start + len)`.
    fn pieces(&self, start: u64, len: u64) -> Vec<(u64, u64)> {
        let mut pieces = Vec::new();
        let mut done = 0;
        while done < len {
            let at = (start + done) % PIPE_CAPACITY;
            let page = (at / PAGE_SIZE) as usize;
            let in_page = at % PAGE_SIZE;
            let chunk = (PAGE_SIZE - in_page).min(len - done);
            let gpa = self.frames[page] + in_page;
            match pieces.last_mut() {
                Some((last, n)) if *last + *n == gpa => *n += chunk,
                _ => pieces.push((gpa, chunk)),
            }
            done += chunk;
        }
        pieces
    }

    /// Where the next `wanted` readable bytes are (at most what is buffered).
    pub fn readable(&self, wanted: u64) -> Vec<(u64, u64)> {
        self.pieces(self.head, wanted.min(self.len))
    }

    /// Marks `count` bytes read.
    pub fn consume(&mut self, count: u64) {
        self.head = (self.head + count) % PIPE_CAPACITY;
        self.len -= count;
    }

    /// Where up to `wanted` bytes can be written (at most the free space).
    pub fn writable(&self, wanted: u64) -> Vec<(u64, u64)> {
        let free = PIPE_CAPACITY - self.len;
        self.pieces(self.head + self.len, wanted.min(free))
    }

    /// Marks `count` bytes written.
    pub fn produce(&mut self, count: u64) {
        self.len += count;
    }
}
