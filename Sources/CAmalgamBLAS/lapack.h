// The few LAPACK routines Amalgam calls (OpenBLAS exports them; Debian ships no lapack.h beside cblas.h).
// Fortran conventions: column-major arrays, every argument by pointer.
#ifndef AMALGAM_LAPACK_H
#define AMALGAM_LAPACK_H

/// Singular value decomposition by divide and conquer (jobz 'S': the min(m,n) leading vectors).
void dgesdd_(const char *jobz, const int *m, const int *n, double *a, const int *lda, double *s,
             double *u, const int *ldu, double *vt, const int *ldvt, double *work, const int *lwork,
             int *iwork, int *info);
/// QR factorisation (Householder reflectors in a and tau).
void dgeqrf_(const int *m, const int *n, double *a, const int *lda, double *tau, double *work,
             const int *lwork, int *info);
/// The first n columns of Q from dgeqrf's reflectors.
void dorgqr_(const int *m, const int *n, const int *k, double *a, const int *lda, const double *tau,
             double *work, const int *lwork, int *info);
/// Minimum-norm least squares by a complete orthogonal factorisation with column pivoting (torch.linalg.lstsq's
/// CPU default driver, `gelsy`).
void dgelsy_(const int *m, const int *n, const int *nrhs, double *a, const int *lda, double *b, const int *ldb,
             int *jpvt, const double *rcond, int *rank, double *work, const int *lwork, int *info);

#endif
